-- A user's emergency grants on a patient that are still running at $3.
SELECT grant_id, patient_id, user_id, expires_at
FROM emergency_grants
WHERE patient_id = $1 AND user_id = $2 AND granted_at <= $3 AND expires_at > $3
ORDER BY expires_at DESC, grant_id
