-- The global log after a cursor, gap-safe: only rows whose writing transaction is older
-- than every transaction still in flight, so nothing can later appear behind the cursor.
SELECT position, event_id, stream_id, version, event_type, schema_version, subject_id,
       key_id, payload, metadata, recorded_at, prev_hash, hash
FROM events
WHERE position > $1
  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY position
LIMIT $2
