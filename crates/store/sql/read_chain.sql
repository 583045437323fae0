-- Everything the verifier needs, one stream after another, keyset-paged.
SELECT position, event_id, stream_id, version, event_type, schema_version, subject_id,
       key_id, payload, metadata, recorded_at, prev_hash, hash
FROM events
WHERE ($1::text IS NULL OR stream_id = $1)
  AND (stream_id, version) > ($2, $3)
ORDER BY stream_id, version
LIMIT $4
