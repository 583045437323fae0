-- MFA was just turned on: sessions opened with the password alone end now.
UPDATE sessions SET revoked_at = now(), revoked_reason = 'mfa_enabled'
WHERE user_id = $1 AND session_id <> $2 AND NOT mfa AND revoked_at IS NULL
RETURNING session_id
