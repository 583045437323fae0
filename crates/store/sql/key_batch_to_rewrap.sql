SELECT subject_id, key_id, kek_id, wrapped_key
FROM subject_keys
WHERE kek_id IS NOT NULL AND kek_id <> $1
ORDER BY subject_id
LIMIT $2
FOR UPDATE
