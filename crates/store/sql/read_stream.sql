SELECT position, event_id, stream_id, version, event_type, schema_version, subject_id,
       key_id, payload, metadata, recorded_at, prev_hash, hash
FROM events
WHERE stream_id = $1 AND version > $2
ORDER BY version
LIMIT $3
