SELECT user_id FROM users WHERE email_index = $1
