-- The last version and hash of each named stream (empty streams are absent).
SELECT DISTINCT ON (stream_id) stream_id, version, hash
FROM events
WHERE stream_id = ANY($1::text[])
ORDER BY stream_id, version DESC
