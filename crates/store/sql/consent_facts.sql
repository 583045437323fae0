-- The consents in force on a patient (state `active`; the policy compares `expires_at`
-- with now), for access decisions.
SELECT patient_id, grantee_org_id, grantee_user_id, scope, status, expires_at
FROM consents
WHERE patient_id = $1 AND status = 'active'
ORDER BY consent_id
