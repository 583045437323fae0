-- A record written, amended or voided (in the transaction appending the event). Never
-- moves back to an older version; a record never changes patient (the first is kept).
INSERT INTO record_index (record_id, patient_id, version, position)
VALUES ($1, $2, $3, $4)
ON CONFLICT (record_id) DO UPDATE
SET version  = EXCLUDED.version,
    position = EXCLUDED.position
WHERE record_index.version <= EXCLUDED.version
