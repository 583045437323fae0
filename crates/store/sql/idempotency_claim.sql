-- Claims (scope, key) for a first request. An existing row is taken over only if it has
-- expired ($4 seconds old) or is an in-progress claim abandoned by a crashed process
-- ($5 seconds old). No row returned: someone holds the key; read it with idempotency_get.
INSERT INTO idempotency_keys (scope_hash, key, fingerprint)
VALUES ($1, $2, $3)
ON CONFLICT (scope_hash, key) DO UPDATE
SET fingerprint = EXCLUDED.fingerprint,
    status = NULL,
    response = NULL,
    created_at = now()
WHERE idempotency_keys.created_at < now() - make_interval(secs => $4)
   OR (idempotency_keys.status IS NULL
       AND idempotency_keys.created_at < now() - make_interval(secs => $5))
RETURNING created_at
