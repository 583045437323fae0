-- A projection's checkpoint: the last position whose effects are committed.
SELECT position FROM projection_checkpoints WHERE name = $1
