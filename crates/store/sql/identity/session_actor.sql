-- Everything a request's authentication needs, current: the session and the user's roles.
SELECT s.user_id, s.mfa, s.created_at, s.last_seen_at, s.revoked_at IS NOT NULL AS revoked,
       u.base_role, u.platform_roles, u.mfa_enabled
FROM sessions s JOIN users u USING (user_id)
WHERE s.session_id = $1
