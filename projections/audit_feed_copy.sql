-- Appends a batch of events to `audit_feed` in one COPY (a rebuild's batches, into the
-- twin): the rows of audit_feed_apply.sql, sent in PostgreSQL's binary COPY format. Not
-- idempotent: the rows must not be there yet (a rebuild never applies an event twice);
-- a replayed event fails the batch on the primary key instead of being skipped.
COPY audit_feed (position, event_id, stream_id, stream_type, event_type, actor_id,
                 request_id, recorded_at, roles, org_id, ip, user_agent, action,
                 resource_type, resource_id, outcome, endpoint, service, emergency)
FROM STDIN (FORMAT binary)
