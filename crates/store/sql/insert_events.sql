-- One round trip for a whole group-commit batch. Rows are inserted in input order, so
-- positions within the batch follow it; callers match positions by event id anyway.
INSERT INTO events (event_id, stream_id, stream_type, version, event_type, schema_version,
                    subject_id, key_id, payload, metadata, recorded_at, prev_hash, hash)
SELECT event_id, stream_id, stream_type, version, event_type, schema_version,
       subject_id, key_id, payload, metadata, recorded_at, prev_hash, hash
FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[],
            $6::smallint[], $7::text[], $8::uuid[], $9::bytea[], $10::jsonb[],
            $11::timestamptz[], $12::bytea[], $13::bytea[])
    WITH ORDINALITY AS t(event_id, stream_id, stream_type, version, event_type, schema_version,
                         subject_id, key_id, payload, metadata, recorded_at, prev_hash, hash, ord)
ORDER BY ord
RETURNING position, event_id
