WITH spent AS (
    INSERT INTO spent_refresh_tokens (refresh_hash, session_id) VALUES ($2, $1)
)
UPDATE sessions SET refresh_hash = $3, last_seen_at = $4
WHERE session_id = $1 AND refresh_hash = $2 AND revoked_at IS NULL
RETURNING session_id
