-- The checkpoint at a position.
SELECT id, position, digest, signature, key_id, created_at
FROM audit_checkpoints
WHERE position = $1
