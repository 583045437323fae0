-- Gives up the claim made at $3 (the handler failed with a 5xx): the client may retry.
DELETE FROM idempotency_keys
WHERE scope_hash = $1
  AND key = $2
  AND created_at = $3
  AND status IS NULL
