-- The last version and hash of each named stream (empty streams are absent): one
-- backward step on the (stream_id, version) index per stream, however long it is.
SELECT s.stream_id, e.version, e.hash
FROM unnest($1::text[]) AS s(stream_id)
CROSS JOIN LATERAL (
    SELECT version, hash
    FROM events
    WHERE events.stream_id = s.stream_id
    ORDER BY version DESC
    LIMIT 1
) AS e
