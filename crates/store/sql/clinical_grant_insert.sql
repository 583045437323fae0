-- An emergency grant (in the transaction appending EmergencyAccessGranted).
INSERT INTO emergency_grants (grant_id, patient_id, user_id, granted_at, expires_at)
VALUES ($1, $2, $3, $4, $5)
