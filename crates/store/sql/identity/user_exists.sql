SELECT EXISTS (SELECT 1 FROM users WHERE user_id = $1) AS found
