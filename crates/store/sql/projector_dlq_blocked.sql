-- Whether a stream has dead letters in a projection (its new events must wait).
SELECT EXISTS (SELECT 1 FROM dlq_entries WHERE projection = $1 AND stream_id = $2)
