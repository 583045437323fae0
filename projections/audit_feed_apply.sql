-- Applies one event to `audit_feed` (idempotent: a replayed event changes nothing).
INSERT INTO audit_feed (position, event_id, stream_id, stream_type, event_type, actor_id,
                        request_id, recorded_at, roles, org_id, ip, user_agent, action,
                        resource_type, resource_id, outcome, endpoint, service, emergency)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
ON CONFLICT (position) DO NOTHING
