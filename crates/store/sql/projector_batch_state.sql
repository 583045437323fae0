-- Which of the streams $2 have dead letters in a projection (their new events must wait).
SELECT DISTINCT stream_id FROM dlq_entries WHERE projection = $1 AND stream_id = ANY($2)
