-- Deletes at most $2 records older than $1 seconds, oldest first (bounded, so a purge
-- piggy-backed on a request never turns into a long-running delete).
DELETE FROM idempotency_keys
WHERE ctid = ANY (ARRAY(
    SELECT ctid
    FROM idempotency_keys
    WHERE created_at < now() - make_interval(secs => $1)
    ORDER BY created_at
    LIMIT $2
))
