SELECT key_id, kek_id, wrapped_key FROM subject_keys WHERE subject_id = $1
