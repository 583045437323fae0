-- What a projector batch is decided on, read under the projection's lock
-- (projector_lock.sql) in one round trip: the projection $1's checkpoint (NULL before its
-- first commit), and which of the streams $2 have dead letters in it (their new events
-- must wait behind them). READ COMMITTED: this statement's snapshot is taken after the
-- lock was granted, so it sees whatever a rebuild or a DLQ operation committed before.
SELECT (SELECT position FROM projection_checkpoints WHERE name = $1) AS checkpoint,
       ARRAY(SELECT DISTINCT stream_id FROM dlq_entries
             WHERE projection = $1 AND stream_id = ANY($2)) AS blocked
