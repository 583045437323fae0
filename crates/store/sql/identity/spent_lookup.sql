SELECT session_id FROM spent_refresh_tokens WHERE refresh_hash = $1
