-- The live (unexpired) record of (scope, key), if any.
SELECT fingerprint, status, response
FROM idempotency_keys
WHERE scope_hash = $1
  AND key = $2
  AND created_at >= now() - make_interval(secs => $3)
