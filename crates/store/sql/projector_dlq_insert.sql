-- Sets an event aside ('failed' or 'waiting'); a replayed event is recorded once.
INSERT INTO dlq_entries (id, projection, stream_id, event_id, position, error, attempts,
                         first_failed_at, last_failed_at, status)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
ON CONFLICT (projection, event_id) DO NOTHING
