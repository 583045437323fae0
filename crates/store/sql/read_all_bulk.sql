-- The global log after a cursor, gap-safe, for a replay of the whole log (a rebuild): the
-- same page as read_all.sql (it stops before its first row of a transaction not older
-- than every one in flight), with the horizon computed once per query.
WITH page AS (
    SELECT position, event_id, stream_id, version, event_type, schema_version, subject_id,
           key_id, payload, metadata, recorded_at, prev_hash, hash, tx_id
    FROM events
    WHERE position > $1
    ORDER BY position
    LIMIT $2
), horizon AS (
    SELECT min(position) AS first_recent
    FROM page
    WHERE tx_id >= (SELECT pg_snapshot_xmin(pg_current_snapshot()))
)
SELECT position, event_id, stream_id, version, event_type, schema_version, subject_id,
       key_id, payload, metadata, recorded_at, prev_hash, hash
FROM page
WHERE position < COALESCE((SELECT first_recent FROM horizon), 9223372036854775807)
ORDER BY position
