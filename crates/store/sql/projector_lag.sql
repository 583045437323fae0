-- How many positions a projection's checkpoint is behind the head of the log.
SELECT GREATEST(
         COALESCE((SELECT max(position) FROM events), 0)
         - COALESCE((SELECT position FROM projection_checkpoints WHERE name = $1), 0),
         0)::bigint AS lag
