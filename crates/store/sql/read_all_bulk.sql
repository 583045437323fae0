-- The global log after a cursor, gap-safe, for a replay of the whole log (a rebuild): the
-- first $2 rows after $1, stopped before its first row of a transaction not older than
-- every one in flight, with the horizon computed once per query. (read_all.sql, the live
-- readers' page, relies on the log lock alone since migration 0010; the replay keeps the
-- horizon, which its range reads need anyway: read.rs, ReplayHorizon.) One statement, one snapshot: the InitPlan finds the page's first recent row
-- (xmin evaluated once), the outer scan returns the page's rows before it straight off
-- the primary key, already in order (no materialised page, no sort, no temp file).
-- Payloads only of the event types $3 (NULL: every type), as read_range_bulk.sql.
SELECT position, event_id, stream_id, version, event_type, schema_version, subject_id,
       key_id,
       CASE WHEN $3::text[] IS NULL OR event_type = ANY($3) THEN payload ELSE ''::bytea END,
       metadata, recorded_at, prev_hash, hash
FROM events
WHERE position > $1
  AND position < COALESCE(
        (SELECT min(page.position)
         FROM (SELECT position, tx_id FROM events
               WHERE position > $1
               ORDER BY position
               LIMIT $2) AS page
         WHERE page.tx_id >= (SELECT pg_snapshot_xmin(pg_current_snapshot()))),
        9223372036854775807)
ORDER BY position
LIMIT $2
