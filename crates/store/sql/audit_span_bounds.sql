-- The positions an audit search over the date range $1..$2 (inclusive; NULL: open) need
-- scan in log order: from the first position of the first span whose entries' interval
-- of recorded_at meets the range, to the last position of the last such span
-- (`audit_feed_spans`, projections/audit_feed.sql; a span is the positions
-- span * size ..= span * size + size - 1, size being `audit_feed_span_size()`). Every
-- entry of the range lies between them. NULL, NULL: no entry lies in the range.
SELECT min(s.span) * audit_feed_span_size() AS first_position,
       (max(s.span) + 1) * audit_feed_span_size() - 1 AS last_position
FROM audit_feed_spans s
WHERE ($1::timestamptz IS NULL OR s.last_at >= $1)
  AND ($2::timestamptz IS NULL OR s.first_at <= $2)
