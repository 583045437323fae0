-- (After audit_filter.sql.) One page of the matching entries in log order: $9 limit,
-- $10 offset. The page's positions are chosen first, then its rows read by primary key.
--
-- Without a date range the positions come in order from an index on the filter's
-- columns and position (or from the primary key), and the scan stops at the page's end.
-- With a date range that ordered scan is the planner's choice too, as it assumes the
-- matches spread evenly over the positions; but recorded_at grows with position (to
-- within a commit), so for a range late in the log it would walk most of the table
-- before the first match. So a
-- date range first collects its matches through the time indexes, in time order and at
-- most 50,000 of them (`MATERIALIZED`: evaluated on its own, whatever the outer ORDER
-- BY). If that is all of them, the page is the first of these sorted by position, at a
-- cost bounded by the 50,000. Only a range with more matches takes the ordered scan
-- (fast when the range starts early in the log, as slow as before when a long range
-- starts late). The branch not taken does not run.
, in_range AS MATERIALIZED (
  SELECT m.position
  FROM matched m
  WHERE $6::timestamptz IS NOT NULL OR $7::timestamptz IS NOT NULL
  ORDER BY m.recorded_at
  LIMIT 50001
), collected AS (
  SELECT ($6::timestamptz IS NOT NULL OR $7::timestamptz IS NOT NULL)
         AND count(*) <= 50000 AS all_in
  FROM in_range
), page AS (
  (SELECT m.position
   FROM matched m
   WHERE NOT (SELECT all_in FROM collected)
   ORDER BY m.position
   LIMIT $9 OFFSET $10)
  UNION ALL
  (SELECT r.position
   FROM in_range r
   WHERE (SELECT all_in FROM collected)
   ORDER BY r.position
   LIMIT $9 OFFSET $10)
)
SELECT f.position, f.event_id, f.stream_id, f.event_type, f.actor_id, f.roles, f.org_id,
       f.action, f.resource_type, f.resource_id, f.outcome, f.request_id, f.ip,
       f.user_agent, f.service, f.endpoint, f.recorded_at, f.emergency
FROM page p
JOIN audit_feed f ON f.position = p.position
ORDER BY f.position
