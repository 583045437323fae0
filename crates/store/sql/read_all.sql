-- The global log after a cursor, gap-safe. Positions are handed out under the log lock in
-- commit order (ADR 0002), so the committed rows after the cursor are a prefix; as a
-- defence in depth the page also stops before its first row written by a transaction
-- not older than every transaction still in flight (`tx_id >= xmin`). It stops there
-- rather than skipping such rows: a transaction may take its xid before the log lock
-- (an inline-table write, a new subject key), so xid order is not position order, and
-- hiding an early row while returning a later one would skip it for good.
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
    WHERE tx_id >= pg_snapshot_xmin(pg_current_snapshot())
)
SELECT position, event_id, stream_id, version, event_type, schema_version, subject_id,
       key_id, payload, metadata, recorded_at, prev_hash, hash
FROM page
WHERE position < COALESCE((SELECT first_recent FROM horizon), 9223372036854775807)
ORDER BY position
