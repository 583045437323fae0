-- The global log after a cursor, gap-safe. Every insert into `events` holds the log lock
-- from its insert to its commit (carelog's appends take it, migration 0010's trigger
-- makes any other writer take it), and positions are allocated under it, so the rows
-- committed after the cursor are a prefix of the positions after it: a row committed
-- later than this read always gets a higher position than any row it returns (ADR 0002,
-- amendment c). No transaction-id horizon: it made readers wait for any older
-- transaction of the cluster, the projectors' included.
SELECT position, event_id, stream_id, version, event_type, schema_version, subject_id,
       key_id, payload, metadata, recorded_at, prev_hash, hash
FROM events
WHERE position > $1
ORDER BY position
LIMIT $2
