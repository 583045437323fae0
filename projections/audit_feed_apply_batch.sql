-- Applies a batch of events to `audit_feed` in one statement (a rebuild's batches): one
-- array per column, one element per event, in position order. Idempotent, as
-- audit_feed_apply.sql: a replayed event changes nothing.
INSERT INTO audit_feed (position, event_id, stream_id, stream_type, event_type, actor_id,
                        request_id, recorded_at)
SELECT *
FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[],
            $7::text[], $8::timestamptz[])
ON CONFLICT (position) DO NOTHING
