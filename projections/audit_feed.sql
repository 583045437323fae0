-- Read model `audit_feed` (projection "audit_feed", crates/projector::audit_feed):
-- one row per event of the log, from its clear metadata only — never a payload sealed
-- under a person's key, so no PHI. The one exception is the payload of events sealed
-- under the `system` subject (AccessRecorded, ClientAuditDeclared), which carries ids and
-- technical facts only. Created by migrations/0006_projector.sql; this file is its
-- definition of record (run idempotently by crates/projector::schemas; a rebuild creates
-- the same table under another name and swaps it in).
CREATE TABLE IF NOT EXISTS audit_feed (
    position     bigint      PRIMARY KEY,
    event_id     uuid        NOT NULL UNIQUE,
    stream_id    text        NOT NULL,
    stream_type  text        NOT NULL,
    event_type   text        NOT NULL,
    actor_id     uuid,
    request_id   text,
    recorded_at  timestamptz NOT NULL
);

-- Audit entries (API.md "Audit"): who (roles, org), from where (ip, user agent), what
-- (action on resource_type/resource_id, outcome), through which service and endpoint,
-- and whether under emergency ("break-glass") access.
ALTER TABLE audit_feed ADD COLUMN IF NOT EXISTS roles         text[]  NOT NULL DEFAULT '{}';
ALTER TABLE audit_feed ADD COLUMN IF NOT EXISTS org_id        uuid;
ALTER TABLE audit_feed ADD COLUMN IF NOT EXISTS ip            text;
ALTER TABLE audit_feed ADD COLUMN IF NOT EXISTS user_agent    text;
ALTER TABLE audit_feed ADD COLUMN IF NOT EXISTS action        text    NOT NULL DEFAULT '';
ALTER TABLE audit_feed ADD COLUMN IF NOT EXISTS resource_type text    NOT NULL DEFAULT '';
ALTER TABLE audit_feed ADD COLUMN IF NOT EXISTS resource_id   text;
ALTER TABLE audit_feed ADD COLUMN IF NOT EXISTS outcome       text    NOT NULL DEFAULT 'success';
ALTER TABLE audit_feed ADD COLUMN IF NOT EXISTS endpoint      text;
ALTER TABLE audit_feed ADD COLUMN IF NOT EXISTS service       text;
ALTER TABLE audit_feed ADD COLUMN IF NOT EXISTS emergency     boolean NOT NULL DEFAULT false;

-- The audit queries (crates/store/sql/audit_*.sql): by resource, by user (the actor
-- index of the migration), by time, by action, and an organisation's entries.
CREATE INDEX IF NOT EXISTS audit_feed_resource ON audit_feed (resource_type, resource_id, position);
CREATE INDEX IF NOT EXISTS audit_feed_time ON audit_feed (recorded_at);
CREATE INDEX IF NOT EXISTS audit_feed_action ON audit_feed (action, position);
CREATE INDEX IF NOT EXISTS audit_feed_org ON audit_feed (org_id, position) WHERE org_id IS NOT NULL;
