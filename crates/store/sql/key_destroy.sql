-- Crypto-shredding: the wrapped key is gone; the row stays as a tombstone.
UPDATE subject_keys
SET wrapped_key = NULL, kek_id = NULL, destroyed_at = now()
WHERE subject_id = $1 AND destroyed_at IS NULL
RETURNING key_id
