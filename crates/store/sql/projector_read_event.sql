-- One event by id (a dead letter's event, re-read from the log for a retry).
SELECT position, event_id, stream_id, version, event_type, schema_version, subject_id,
       key_id, payload, metadata, recorded_at, prev_hash, hash
FROM events
WHERE event_id = $1
