-- Read model `audit_feed` (projection "audit_feed", crates/projector::audit_feed):
-- one row per event of the log, from its clear metadata only — never the payload, so no
-- PHI. Created by migrations/0006_projector.sql; this file is its definition of record
-- (a rebuild creates the same table under another name and swaps it in).
CREATE TABLE IF NOT EXISTS audit_feed (
    position     bigint      PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    stream_id    text        NOT NULL,
    stream_type  text        NOT NULL,
    event_type   text        NOT NULL,
    actor_id     uuid,
    request_id   text,
    recorded_at  timestamptz NOT NULL
)
