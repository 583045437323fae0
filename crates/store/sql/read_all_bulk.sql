-- The global log after a cursor, gap-safe, for a replay of the whole log (a rebuild):
-- as read_all.sql, with the horizon computed once per query (an InitPlan) rather than
-- once per row.
SELECT position, event_id, stream_id, version, event_type, schema_version, subject_id,
       key_id, payload, metadata, recorded_at, prev_hash, hash
FROM events
WHERE position > $1
  AND tx_id < (SELECT pg_snapshot_xmin(pg_current_snapshot()))
ORDER BY position
LIMIT $2
