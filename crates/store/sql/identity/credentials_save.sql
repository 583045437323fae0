UPDATE users
SET failed_logins = $2, lock_count = $3, locked_until = $4, totp_last_step = $5,
    totp_pending = $6, totp_secret = $7, mfa_enabled = $8, platform_roles = $9,
    password_hash = $10
WHERE user_id = $1
