-- Idle tracking without a write per request: at most one update a minute per session.
UPDATE sessions SET last_seen_at = $2
WHERE session_id = $1 AND revoked_at IS NULL AND last_seen_at < $2 - interval '60 seconds'
