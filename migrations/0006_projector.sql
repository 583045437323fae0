-- Projectors (crates/projector): each projection's checkpoint, its dead-letter queue, and
-- the read models of projections/ that ship with carelog.
--
-- A projector writes its checkpoint in the same transaction as the rows it changed
-- (DESIGN.md invariant 7), so `position` is the last event whose effects are committed.
-- Every read-model table can be dropped and rebuilt from position 0.

CREATE TABLE projection_checkpoints (
    name        text        PRIMARY KEY,
    position    bigint      NOT NULL CHECK (position >= 0),
    updated_at  timestamptz
);

REVOKE ALL ON projection_checkpoints FROM PUBLIC;

-- Dead letters (DESIGN.md invariant 8). One row per event a projection has set aside:
-- - 'failed': the event could not be applied after `attempts` tries; `error` says why.
-- - 'waiting': a later event of the same stream, parked behind the failed one (in position
--   order) so that no stream is ever applied out of order; other streams keep flowing.
-- `error` is the projection's own message (ApplyError): it must carry no PHI — no payload
-- value, no database error detail — only what failed (type, constraint, SQLSTATE).
-- Retry and discard (crates/projector::dlq) are audited by events in the operations stream.
CREATE TABLE dlq_entries (
    id              uuid        PRIMARY KEY,
    projection      text        NOT NULL,
    stream_id       text        NOT NULL,
    event_id        uuid        NOT NULL,
    position        bigint      NOT NULL,
    error           text,
    attempts        int         NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    first_failed_at timestamptz,
    last_failed_at  timestamptz,
    status          text        NOT NULL CHECK (status IN ('failed', 'waiting')),
    UNIQUE (projection, event_id)
);

CREATE INDEX dlq_entries_stream ON dlq_entries (projection, stream_id, position);

REVOKE ALL ON dlq_entries FROM PUBLIC;

-- projections/audit_feed.sql: who did what, when, from the events' clear metadata only
-- (no payload, no PHI). One row per event; rebuildable from the log.
CREATE TABLE audit_feed (
    position     bigint      PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    stream_id    text        NOT NULL,
    stream_type  text        NOT NULL,
    event_type   text        NOT NULL,
    actor_id     uuid,
    request_id   text,
    recorded_at  timestamptz NOT NULL
);

CREATE INDEX audit_feed_actor ON audit_feed (actor_id, position) WHERE actor_id IS NOT NULL;
CREATE INDEX audit_feed_stream ON audit_feed (stream_id, position);

REVOKE ALL ON audit_feed FROM PUBLIC;
