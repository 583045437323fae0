UPDATE sessions SET mfa = true WHERE session_id = $1 AND revoked_at IS NULL
