-- (After audit_filter.sql.) One page of the matching entries in log order: $9 limit,
-- $10 offset; with a date range, $11 and $12 are its bounds from audit_span_bounds.sql,
-- read in the same snapshot. The page's positions are chosen first, then its rows read
-- by primary key.
--
-- Without a date range the positions come in order from an index on the filter's
-- columns and position (or from the primary key), and the scan stops at the page's end.
-- With a date range that ordered scan is the planner's choice too, as it assumes the
-- matches spread evenly over the positions; but recorded_at grows with position (only
-- roughly), so for a range late in the log it would walk most of the table before the
-- first match. So a date range first collects its matches through the time indexes, in
-- time order and at most 10,000 of them (`MATERIALIZED`: evaluated on its own, whatever
-- the outer ORDER BY; `LIMIT 0` without a range, so that nothing is planned or started
-- for it). If that is all of them, the page is the first of these sorted by position,
-- at a cost bounded by the 10,000. A range with more matches takes the ordered scan
-- over the positions $11..$12 only: those of the spans whose interval of recorded_at
-- meets the range (`audit_feed_spans` of projections/audit_feed.sql: the earliest and
-- latest recorded_at of each run of 4,096 positions; every entry of the range lies in a
-- span that meets it, so the bounds are exact however far recorded_at strays from log
-- order). Matches that many are dense enough within those bounds for the scan to reach
-- the page soon. The bounds come as values, not from a sub-select, so that the planner
-- knows how many positions they hold: given an unknown pair it guessed few, and could
-- take the time index and a sort instead (35 ms a page). The branch not taken does not
-- run.
, in_range AS MATERIALIZED (
  SELECT m.position
  FROM matched m
  ORDER BY m.recorded_at
  LIMIT CASE WHEN $6::timestamptz IS NULL AND $7::timestamptz IS NULL THEN 0 ELSE 10001 END
), collected AS (
  SELECT ($6::timestamptz IS NOT NULL OR $7::timestamptz IS NOT NULL)
         AND count(*) <= 10000 AS all_in
  FROM in_range
), page AS (
  (SELECT m.position
   FROM matched m
   WHERE NOT (SELECT all_in FROM collected)
     AND (($6::timestamptz IS NULL AND $7::timestamptz IS NULL)
          OR m.position BETWEEN $11::bigint AND $12::bigint)
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
