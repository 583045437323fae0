-- What access decisions know of a patient, current.
SELECT patient_id, org_id, user_id, erased_at IS NOT NULL AS erased, version, position
FROM patient_index
WHERE patient_id = $1
