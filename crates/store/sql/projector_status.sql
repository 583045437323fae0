-- How far a projection is behind the log: its checkpoint, the head, and the age of the
-- oldest event it has not applied yet (0 when caught up).
SELECT cp.position,
       coalesce((SELECT max(position) FROM events), 0) AS head,
       coalesce(extract(epoch FROM now() - (
           SELECT recorded_at FROM events WHERE position > cp.position ORDER BY position LIMIT 1
       )), 0)::float8 AS lag_seconds,
       (SELECT count(*) FROM dlq_entries d WHERE d.projection = $1 AND d.status = 'failed') AS failed
FROM (SELECT coalesce((SELECT position FROM projection_checkpoints WHERE name = $1), 0) AS position) AS cp
