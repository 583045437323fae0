UPDATE sessions SET revoked_at = now(), revoked_reason = $2
WHERE session_id = $1 AND revoked_at IS NULL
RETURNING user_id
