-- RecordCreated: the record and its first version (idempotent: a replayed event changes
-- nothing).
WITH created AS (
    INSERT INTO clinical_records (record_id, patient_id, org_id, kind, code, title, body, data,
                                  recorded_at, author_id, status, void_reason, version,
                                  position, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'active', NULL, $11, $12, $13, $13)
    ON CONFLICT (record_id) DO NOTHING
    RETURNING record_id, version, kind, code, title, body, data, recorded_at, author_id,
              created_at
)
INSERT INTO clinical_record_versions (record_id, version, change, kind, code, title, body,
                                      data, recorded_at, author_id, reason, at)
SELECT record_id, version, 'created', kind, code, title, body, data, recorded_at, author_id,
       NULL, created_at
FROM created
ON CONFLICT (record_id, version) DO NOTHING
