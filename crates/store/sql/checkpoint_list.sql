-- Every checkpoint, newest first.
SELECT id, position, digest, signature, key_id, created_at
FROM audit_checkpoints
ORDER BY position DESC
