-- A patient registered or changed (in the transaction appending the event). Never moves
-- back to an older version, and never clears an erasure.
INSERT INTO patient_index (patient_id, org_id, user_id, erased_at, version, position)
VALUES ($1, $2, $3, CASE WHEN $4::boolean THEN now() END, $5, $6)
ON CONFLICT (patient_id) DO UPDATE
SET org_id    = EXCLUDED.org_id,
    user_id   = EXCLUDED.user_id,
    erased_at = COALESCE(patient_index.erased_at, EXCLUDED.erased_at),
    version   = EXCLUDED.version,
    position  = EXCLUDED.position
WHERE patient_index.version <= EXCLUDED.version
