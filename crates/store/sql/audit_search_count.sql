-- (After audit_filter.sql.) How many entries match, counted up to $9 + 1 only: a total
-- above $9 is "more than $9" (crates/store::audit::Total), so a broad filter costs the
-- reading of $9 + 1 index entries, not of the whole table.
SELECT count(*)
FROM (SELECT 1 FROM matched LIMIT $9::bigint + 1) capped
