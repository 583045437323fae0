INSERT INTO users (user_id, email_index, password_hash, base_role, platform_roles)
VALUES ($1, $2, $3, $4, $5)
