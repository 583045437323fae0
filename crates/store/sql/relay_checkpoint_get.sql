-- The relay's checkpoint for one NATS prefix (no row: nothing published yet).
SELECT position FROM relay_checkpoints WHERE name = $1
