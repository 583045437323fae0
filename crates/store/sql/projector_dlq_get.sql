-- One dead letter, locked for a retry or discard.
SELECT id, projection, stream_id, event_id, position, error, attempts, first_failed_at,
       last_failed_at, status
FROM dlq_entries
WHERE id = $1
FOR UPDATE
