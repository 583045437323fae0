-- Every session consent of a patient, whatever its state, newest first.
SELECT consent_id, patient_id, kind, org_id, user_id, status, expires_at, created_at,
       updated_at, version, position
FROM session_consents
WHERE patient_id = $1
ORDER BY created_at DESC, consent_id DESC
