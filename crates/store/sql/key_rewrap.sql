UPDATE subject_keys
SET kek_id = $3, wrapped_key = $4, rewrapped_at = now()
WHERE subject_id = $1 AND kek_id = $2
