-- The position of the latest checkpoint, if any.
SELECT max(position) FROM audit_checkpoints
