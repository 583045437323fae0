-- Applies a batch of events to `audit_feed` in one statement (a rebuild's batches): one
-- array per column, one element per event, in position order. Idempotent, as
-- audit_feed_apply.sql: a replayed event changes nothing. `roles` travel as one
-- comma-separated text per event (UNNEST cannot take an array of arrays; role names hold
-- no comma) and are split back here.
INSERT INTO audit_feed (position, event_id, stream_id, stream_type, event_type, actor_id,
                        request_id, recorded_at, roles, org_id, ip, user_agent, action,
                        resource_type, resource_id, outcome, endpoint, service, emergency)
SELECT u.position, u.event_id, u.stream_id, u.stream_type, u.event_type, u.actor_id,
       u.request_id, u.recorded_at, string_to_array(u.roles, ','), u.org_id, u.ip,
       u.user_agent, u.action, u.resource_type, u.resource_id, u.outcome, u.endpoint,
       u.service, u.emergency
FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::uuid[],
            $7::text[], $8::timestamptz[], $9::text[], $10::uuid[], $11::text[],
            $12::text[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[],
            $18::text[], $19::boolean[])
     AS u(position, event_id, stream_id, stream_type, event_type, actor_id, request_id,
          recorded_at, roles, org_id, ip, user_agent, action, resource_type, resource_id,
          outcome, endpoint, service, emergency)
ON CONFLICT (position) DO NOTHING
