-- What a projector batch is decided on, read under the projection's lock
-- (projector_lock.sql), and the checkpoint moved to the batch's last position, in one
-- round trip: the projection $1's checkpoint before this batch (NULL before its first
-- commit), and which of the streams $2 have dead letters in it (their new events must
-- wait behind them); the checkpoint then becomes $3 unless it is already past it.
-- READ COMMITTED: this statement's snapshot is taken after the lock was granted, so it
-- sees whatever a rebuild or a DLQ operation committed before; and every part of one
-- statement reads that same snapshot, so `checkpoint` is the value before the upsert.
-- The upsert commits with the batch's effects or rolls back with them.
WITH moved AS (
    INSERT INTO projection_checkpoints (name, position, updated_at)
    VALUES ($1, $3, now())
    ON CONFLICT (name) DO UPDATE
    SET position = GREATEST(projection_checkpoints.position, EXCLUDED.position),
        updated_at = now()
)
SELECT (SELECT position FROM projection_checkpoints WHERE name = $1) AS checkpoint,
       ARRAY(SELECT DISTINCT stream_id FROM dlq_entries
             WHERE projection = $1 AND stream_id = ANY($2)) AS blocked
