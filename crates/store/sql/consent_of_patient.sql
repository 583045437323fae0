-- Every consent of a patient, whatever its state, oldest first (listings, export).
SELECT consent_id, patient_id, grantee_org_id, grantee_user_id, scope, purpose, status,
       expires_at, requested_by, created_at, updated_at, version, position
FROM consents
WHERE patient_id = $1
ORDER BY created_at, consent_id
