-- The horizon of a replay read in position ranges (crates/store/src/read.rs,
-- `ReplayHorizon`): in ONE snapshot S, its xmin (transactions below it had ended when S
-- was taken) and the highest position S sees (0 when the log is empty).
SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin,
       COALESCE((SELECT max(position) FROM events), 0) AS head
