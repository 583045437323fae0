-- A new checkpoint; a concurrent one at the same position wins (same digest either way).
INSERT INTO audit_checkpoints (position, digest, signature, key_id)
VALUES ($1, $2, $3, $4)
ON CONFLICT (position) DO NOTHING
