-- Read model `audit_feed` (projection "audit_feed", crates/projector::audit_feed):
-- one row per event of the log, from its clear metadata only — never a payload sealed
-- under a person's key, so no PHI. The one exception is the payload of events sealed
-- under the `system` subject (AccessRecorded, ClientAuditDeclared), which carries ids and
-- technical facts only. Created by migrations/0006_projector.sql; this file is its
-- definition of record (run idempotently by crates/projector::schemas; a rebuild creates
-- the same table under another name and swaps it in).
CREATE TABLE IF NOT EXISTS audit_feed (
    position     bigint      PRIMARY KEY,
    event_id     uuid        NOT NULL,
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

-- The audit queries (crates/store/sql/audit_filter.sql and the statements that follow
-- it): each list answers a page in log order and a total counted up to a cap, so every
-- filter of the API has an index that yields its matches in position order (the page
-- scan stops at the page's end, the count at the cap), and a date range one that reads
-- only the range. Each index slows the projector's inserts; keep to these.
-- By resource (type + id), in log order; index-only for the count.
CREATE INDEX IF NOT EXISTS audit_feed_resource ON audit_feed (resource_type, resource_id, position);
-- Not by event id either: one row per position (the primary key) is already one row
-- per event, the log's event ids being unique, and no query looks an entry up by its
-- event id; the migration's UNIQUE (event_id) only cost every insert and rebuild.
ALTER TABLE audit_feed DROP CONSTRAINT IF EXISTS audit_feed_event_id_key;
-- By user: the actor index of the migration (actor_id, position).
-- Not by stream: no query filters the feed by stream (verification reads the log), so the
-- migration's audit_feed_stream (stream_id, position) only cost every insert and rebuild.
DROP INDEX IF EXISTS audit_feed_stream;
-- By action alone (no date range), in log order.
CREATE INDEX IF NOT EXISTS audit_feed_action ON audit_feed (action, position);
-- By action within a date range: reads the range only (an ordered scan by position
-- would walk the whole log before a late range, as recorded_at grows with position);
-- position included so the page's positions and the count need no heap access.
CREATE INDEX IF NOT EXISTS audit_feed_action_time ON audit_feed (action, recorded_at) INCLUDE (position);
-- By date range alone, the same way; it replaces audit_feed_time (recorded_at), which
-- had to visit the heap for each position of the range.
DROP INDEX IF EXISTS audit_feed_time;
CREATE INDEX IF NOT EXISTS audit_feed_time_position ON audit_feed (recorded_at) INCLUDE (position);
-- By outcome, in log order: without it a rare outcome (failure, about 1 %) is found by
-- scanning the table, for the page and for the count alike. Only the outcomes other than
-- success are indexed: success, nearly every entry, is found at once by the primary key's
-- ordered scan (the page's 50 rows and the count's capped 10,001 come first thing), so
-- indexing it cost every insert and every rebuild for nothing. The statements are
-- planned with their parameters, so `outcome = 'denied'` is seen to imply the predicate.
-- (It replaces audit_feed_outcome, which indexed every entry.)
DROP INDEX IF EXISTS audit_feed_outcome;
CREATE INDEX IF NOT EXISTS audit_feed_outcome_rare ON audit_feed (outcome, position)
    WHERE outcome <> 'success';
-- An organisation's entries (the scope of an organisation's auditor).
CREATE INDEX IF NOT EXISTS audit_feed_org ON audit_feed (org_id, position) WHERE org_id IS NOT NULL;

-- Spans: for each run of 4,096 positions (span = position / audit_feed_span_size()),
-- the earliest and the latest recorded_at of its entries. recorded_at grows with
-- position only roughly (an event is stamped before it commits, and a dead-lettered
-- event is applied late), so a date range's first and last entry in log order cannot be
-- found from the time index without reading every entry of the range; from the spans
-- they can, within a span: an entry of the range lies in a span whose [first_at,
-- last_at] meets the range. The audit search (crates/store/sql/audit_search.sql) scans
-- only positions of those spans when a long range is paged in log order. The trigger
-- keeps them for every writer of the table (the projector's inserts, a rebuild's COPY,
-- a retried dead letter), one upsert per statement; the rebuild copies it onto its twin
-- (audit_feed_rebuild_prepare.sql). docs/adr/0012-audit-search-spans.md.
CREATE TABLE IF NOT EXISTS audit_feed_spans (
    span      bigint      PRIMARY KEY,
    first_at  timestamptz NOT NULL,
    last_at   timestamptz NOT NULL
);
REVOKE ALL ON audit_feed_spans FROM PUBLIC;
-- The positions of a span: the one definition, which the trigger, the back-fill below and
-- crates/store/sql/audit_span_bounds.sql all use (a constant the planner folds).
CREATE OR REPLACE FUNCTION audit_feed_span_size() RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS 'SELECT 4096::bigint';

-- The spans of the table written (the live one, or a rebuild's twin in
-- `carelog_rebuild`) are found on the search path, as every statement of carelog finds
-- its tables: the rebuild puts the twins' schema first. A static statement is planned
-- once per session; the same upsert as dynamic SQL on TG_TABLE_SCHEMA cost two to six
-- times as much per insert (0.10 against 0.016–0.05 ms, between runs, on a 64-row insert
-- of 0.44 ms). A write under
-- a search path that would reach the spans of another schema is refused.
CREATE OR REPLACE FUNCTION audit_feed_spans_track() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_SCHEMA IS DISTINCT FROM current_schema() THEN
        RAISE EXCEPTION 'audit_feed_spans_track: %.audit_feed written under search_path %',
            TG_TABLE_SCHEMA, current_setting('search_path');
    END IF;
    INSERT INTO audit_feed_spans AS s (span, first_at, last_at)
    SELECT n.position / audit_feed_span_size(), min(n.recorded_at), max(n.recorded_at)
    FROM inserted n
    GROUP BY 1
    ORDER BY 1
    ON CONFLICT (span) DO UPDATE
    SET first_at = least(s.first_at, excluded.first_at),
        last_at = greatest(s.last_at, excluded.last_at)
    WHERE excluded.first_at < s.first_at OR excluded.last_at > s.last_at;
    RETURN NULL;
END
$$;
CREATE OR REPLACE TRIGGER audit_feed_spans_track
    AFTER INSERT ON audit_feed
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION audit_feed_spans_track();
-- A table filled before the spans existed gets them once. CREATE TRIGGER locks out
-- writers until this file's transaction ends, so no insert is missed in between.
INSERT INTO audit_feed_spans (span, first_at, last_at)
SELECT f.position / audit_feed_span_size(), min(f.recorded_at), max(f.recorded_at)
FROM audit_feed f
WHERE NOT EXISTS (SELECT 1 FROM audit_feed_spans)
GROUP BY 1
ON CONFLICT (span) DO NOTHING;
