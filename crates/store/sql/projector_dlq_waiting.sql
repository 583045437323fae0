-- The events parked behind a stream's failed event, in position order.
SELECT id, projection, stream_id, event_id, position, error, attempts, first_failed_at,
       last_failed_at, status
FROM dlq_entries
WHERE projection = $1 AND stream_id = $2 AND status = 'waiting'
ORDER BY position
FOR UPDATE
