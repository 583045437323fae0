-- A consent granted, requested or changed (in the transaction appending its event). The
-- terms (patient, grantee, scope, purpose, who asked) never change; the state moves
-- forward only, never back to an older version.
INSERT INTO consents (consent_id, patient_id, grantee_org_id, grantee_user_id, scope,
                      purpose, status, expires_at, requested_by, created_at, updated_at,
                      version, position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (consent_id) DO UPDATE
SET status     = EXCLUDED.status,
    expires_at = EXCLUDED.expires_at,
    updated_at = EXCLUDED.updated_at,
    version    = EXCLUDED.version,
    position   = EXCLUDED.position
WHERE consents.version <= EXCLUDED.version
