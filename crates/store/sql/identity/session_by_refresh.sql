SELECT session_id, user_id, mfa, created_at, last_seen_at, revoked_at IS NOT NULL AS revoked
FROM sessions
WHERE refresh_hash = $1
FOR UPDATE
