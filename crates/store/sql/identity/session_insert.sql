INSERT INTO sessions (session_id, user_id, refresh_hash, mfa, created_at, last_seen_at)
VALUES ($1, $2, $3, $4, $5, $5)
