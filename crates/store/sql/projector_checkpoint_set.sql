-- Advances a projection's checkpoint, in the transaction of the rows it changed; never
-- moves it backwards.
INSERT INTO projection_checkpoints (name, position, updated_at)
VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE
SET position = GREATEST(projection_checkpoints.position, EXCLUDED.position),
    updated_at = now()
