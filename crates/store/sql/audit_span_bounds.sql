-- The positions an audit search over the date range $1..$2 (inclusive; NULL: open) need
-- scan in log order: from the first position of the first span whose entries' interval
-- of recorded_at meets the range, to the last position of the last such span
-- (`audit_feed_spans`, projections/audit_feed.sql; a span is the positions
-- span * 4096 ..= span * 4096 + 4095). Every entry of the range lies between them. NULL,
-- NULL: no entry lies in the range.
SELECT min(s.span) * 4096 AS first_position, max(s.span) * 4096 + 4095 AS last_position
FROM audit_feed_spans s
WHERE ($1::timestamptz IS NULL OR s.last_at >= $1)
  AND ($2::timestamptz IS NULL OR s.first_at <= $2)
