-- A session consent granted or revoked (in the transaction appending its event). Its
-- terms never change; the state moves forward only.
INSERT INTO session_consents (consent_id, patient_id, kind, org_id, user_id, status,
                              expires_at, created_at, updated_at, version, position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (consent_id) DO UPDATE
SET status     = EXCLUDED.status,
    updated_at = EXCLUDED.updated_at,
    version    = EXCLUDED.version,
    position   = EXCLUDED.position
WHERE session_consents.version <= EXCLUDED.version
