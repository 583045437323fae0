-- One session consent, current.
SELECT consent_id, patient_id, kind, org_id, user_id, status, expires_at, created_at,
       updated_at, version, position
FROM session_consents
WHERE consent_id = $1
