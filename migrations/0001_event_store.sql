-- The event store: one append-only table that is the system of record and the audit trail.
--
-- Every column is either a clear, PHI-free fact (ids, types, versions, metadata) or
-- ciphertext (payload). Nothing here is ever updated or deleted: see the triggers and
-- privileges at the end.

CREATE TABLE events (
    -- Global order of the whole log. Allocated while the appending transaction holds
    -- the log's advisory lock (see store/sql/append_*.sql), so position order is commit
    -- order and a reader paging by position never skips a late committer.
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writing transaction. Readers of the global log only return rows whose
    -- transaction is older than every transaction still in flight (pg_snapshot_xmin).
    tx_id           xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- Chosen by the client: a retried append of the same event is recognised, never doubled.
    event_id        uuid        NOT NULL,
    stream_id       text        NOT NULL,
    stream_type     text        NOT NULL,
    version         bigint      NOT NULL CHECK (version > 0),
    event_type      text        NOT NULL,
    schema_version  smallint    NOT NULL CHECK (schema_version > 0),
    -- Whose data key sealed the payload, and which key (destroying it is erasure).
    subject_id      text        NOT NULL,
    key_id          uuid        NOT NULL,
    -- nonce ‖ AES-256-GCM ciphertext ‖ tag; associated data = event id, stream, version, type.
    payload         bytea       NOT NULL,
    -- Who, where, why: ids and technical facts only, never PHI.
    metadata        jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL,
    -- SHA-256(prev_hash ‖ header ‖ payload), chained per stream.
    prev_hash       bytea       NOT NULL CHECK (length(prev_hash) = 32),
    hash            bytea       NOT NULL CHECK (length(hash) = 32),
    CONSTRAINT events_event_id_key UNIQUE (event_id),
    CONSTRAINT events_stream_version_key UNIQUE (stream_id, version),
    CONSTRAINT events_stream_type_matches CHECK (starts_with(stream_id, stream_type || '-'))
);

COMMENT ON TABLE events IS 'carelog event log: append-only, payloads sealed per subject, hash-chained per stream';

-- Append-only, enforced by the database for every role (superusers included: triggers
-- fire for them too, and only a superuser could switch them off with
-- session_replication_role).
CREATE FUNCTION events_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the carelog event log is append-only: % on events is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER events_no_update_or_delete
    BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_reject_change();

CREATE TRIGGER events_no_truncate
    BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_reject_change();

-- The role that runs the migrations is the application's role and may own the table;
-- it keeps only INSERT and SELECT (owners are subject to their own revoked privileges).
REVOKE ALL ON events FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON events FROM CURRENT_USER;
