-- The head of every stream as of a log position ($1): its last event at or below it.
-- Ordered by stream id byte-wise (COLLATE "C"), whatever the database's collation, so
-- `psql` + `sha256sum` recompute the same digest (docs/audit-checkpoints.md).
SELECT stream_id, version, hash
FROM (
    SELECT DISTINCT ON (stream_id) stream_id, version, hash
    FROM events
    WHERE position <= $1
    ORDER BY stream_id, version DESC
) heads
ORDER BY stream_id COLLATE "C"
