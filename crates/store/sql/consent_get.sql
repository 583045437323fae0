-- One consent, current.
SELECT consent_id, patient_id, grantee_org_id, grantee_user_id, scope, purpose, status,
       expires_at, requested_by, created_at, updated_at, version, position
FROM consents
WHERE consent_id = $1
