-- RecordAmended: new current content (only over an older version) and a version row.
WITH amended AS (
    UPDATE clinical_records
    SET code        = $3,
        title       = $4,
        body        = $5,
        data        = $6,
        recorded_at = $7,
        author_id   = $8,
        version     = $2,
        position    = $9,
        updated_at  = $10
    WHERE record_id = $1 AND version < $2
    RETURNING record_id, version, kind, code, title, body, data, recorded_at, author_id,
              updated_at
)
INSERT INTO clinical_record_versions (record_id, version, change, kind, code, title, body,
                                      data, recorded_at, author_id, reason, at)
SELECT record_id, version, 'amended', kind, code, title, body, data, recorded_at, author_id,
       NULL, updated_at
FROM amended
ON CONFLICT (record_id, version) DO NOTHING
