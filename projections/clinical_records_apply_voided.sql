-- RecordVoided: hidden from lists (status), kept in history with its reason (only over an
-- older version). The version row keeps the content as it was; its author is the voider.
WITH voided AS (
    UPDATE clinical_records
    SET status      = 'voided',
        void_reason = $3,
        version     = $2,
        position    = $5,
        updated_at  = $6
    WHERE record_id = $1 AND version < $2
    RETURNING record_id, version, kind, code, title, body, data, recorded_at, updated_at
)
INSERT INTO clinical_record_versions (record_id, version, change, kind, code, title, body,
                                      data, recorded_at, author_id, reason, at)
SELECT record_id, version, 'voided', kind, code, title, body, data, recorded_at, $4::uuid, $3::text,
       updated_at
FROM voided
ON CONFLICT (record_id, version) DO NOTHING
