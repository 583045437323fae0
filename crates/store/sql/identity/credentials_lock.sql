-- The row a login or MFA decision is taken on, locked until the transaction ends so
-- concurrent attempts count every failure and spend every TOTP step once.
SELECT user_id, password_hash, base_role, platform_roles, mfa_enabled, totp_secret,
       totp_pending, totp_last_step, failed_logins, lock_count, locked_until
FROM users
WHERE user_id = $1
FOR UPDATE
