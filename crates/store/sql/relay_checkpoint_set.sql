-- Advances the relay's checkpoint for one NATS prefix; never moves it backwards.
INSERT INTO relay_checkpoints (name, position, updated_at)
VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE
SET position = GREATEST(relay_checkpoints.position, EXCLUDED.position),
    updated_at = now()
