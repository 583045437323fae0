-- Idempotency-Key records (API.md "Headers"): the first answer to a POST that carried an
-- `Idempotency-Key`, kept 24 hours so a retry with the same key and body gets it again.
--
-- A row is claimed before the handler runs (status and response NULL: in progress) and
-- completed with the answer afterwards; a 5xx answer deletes the claim so the client may
-- retry. The response may hold PHI, so it is stored sealed (AES-256-GCM under the
-- `system` subject's data key, associated data = scope ‖ key ‖ status); the key itself is
-- client-chosen and opaque, and the scope is a hash, so no column is readable PHI.

CREATE TABLE idempotency_keys (
    -- SHA-256 over who asked (a hash of the credential, or the client address), the
    -- method and the path: the same key from another caller or on another route is
    -- another row.
    scope_hash   bytea       NOT NULL CHECK (length(scope_hash) = 32),
    -- The client's Idempotency-Key: 1 to 255 printable ASCII characters.
    key          text        NOT NULL CHECK (length(key) BETWEEN 1 AND 255),
    -- SHA-256 over method, path and body: the same key with another body is refused (422).
    fingerprint  bytea       NOT NULL CHECK (length(fingerprint) = 32),
    -- The stored answer's status; NULL while the first request is still running.
    status       smallint    CHECK (status BETWEEN 100 AND 599),
    -- nonce ‖ ciphertext ‖ tag of the stored headers and body; NULL while in progress.
    response     bytea,
    -- When the key was claimed; rows older than 24 hours are expired and purged.
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope_hash, key),
    CONSTRAINT idempotency_keys_in_progress_or_complete CHECK ((status IS NULL) = (response IS NULL))
);

-- The purge finds expired rows oldest first.
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

REVOKE ALL ON idempotency_keys FROM PUBLIC;
