-- The charts (not erased) a patient account is linked to.
SELECT patient_id FROM patient_index
WHERE user_id = $1 AND erased_at IS NULL
ORDER BY patient_id
