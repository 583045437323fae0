-- The highest log position below which nothing can still appear: the last committed
-- position. Positions are handed out under the log's advisory lock, held to commit
-- (lock_log.sql, ADR 0002), so every lower position committed (or rolled back) before it.
-- Not a `tx_id < pg_snapshot_xmin(..)` horizon: that is cluster-wide and any long
-- transaction, in any database, would hold checkpoints back. 0 on an empty log.
SELECT coalesce(max(position), 0)::bigint FROM events
