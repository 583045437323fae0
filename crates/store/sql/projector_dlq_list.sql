-- Dead letters, of one projection or all ($1 NULL), in projection and position order.
SELECT id, projection, stream_id, event_id, position, error, attempts, first_failed_at,
       last_failed_at, status
FROM dlq_entries
WHERE $1::text IS NULL OR projection = $1
ORDER BY projection, position
