-- Signed checkpoints of the event log (docs/audit-checkpoints.md).
--
-- A checkpoint pins the whole log as of a position: `digest` is SHA-256 over the head
-- (stream_id, version, hash) of every stream as of `position`, and `signature` is an
-- Ed25519 signature over `carelog-checkpoint-v1 <position> <hex digest>` by the key whose
-- PASERK id (`k4.pid.…`) is `key_id`. Rewriting an event and recomputing the hash chain
-- of its stream changes that stream's head, so the digest no longer matches the signed one.
--
-- Append-only like the events table: nothing is ever updated or deleted.

CREATE TABLE audit_checkpoints (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The last log position covered (every event at or below it).
    position    bigint      NOT NULL CHECK (position >= 0),
    digest      bytea       NOT NULL CHECK (length(digest) = 32),
    signature   bytea       NOT NULL CHECK (length(signature) = 64),
    -- PASERK id (k4.pid.…) of the Ed25519 public key that verifies `signature`.
    key_id      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT audit_checkpoints_position_key UNIQUE (position)
);

COMMENT ON TABLE audit_checkpoints IS 'carelog signed checkpoints of the event log: append-only';

CREATE FUNCTION audit_checkpoints_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'carelog checkpoints are append-only: % on audit_checkpoints is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_checkpoints_no_update_or_delete
    BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_checkpoints_reject_change();

CREATE TRIGGER audit_checkpoints_no_truncate
    BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_checkpoints_reject_change();

REVOKE ALL ON audit_checkpoints FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON audit_checkpoints FROM CURRENT_USER;
