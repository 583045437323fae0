-- Applies one event to `audit_feed` (idempotent: a replayed event changes nothing).
INSERT INTO audit_feed (position, event_id, stream_id, stream_type, event_type, actor_id,
                        request_id, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (position) DO NOTHING
