-- Stores the answer of the claim made at $3 (a claim taken over since is left alone).
UPDATE idempotency_keys
SET status = $4, response = $5
WHERE scope_hash = $1
  AND key = $2
  AND created_at = $3
  AND status IS NULL
