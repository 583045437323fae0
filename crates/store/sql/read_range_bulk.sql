-- A position range ($1, $2] of the log, for a replay read in ranges under one horizon
-- (crates/store/src/read.rs, `range_bulk`): every row of the range, in position order,
-- each flagged `recent` when its transaction is not older than the horizon's xmin ($3,
-- an xid8 as bigint). The caller keeps the rows before the first recent one, never a
-- row after it: the flag cuts, it does not filter (ADR 0002 and its amendments).
-- Payloads only of the event types $4 (NULL: every type); the others come empty, for a
-- projection that never opens them (crates/projector, `Projection::payload_types`).
SELECT position, event_id, stream_id, version, event_type, schema_version, subject_id,
       key_id,
       CASE WHEN $4::text[] IS NULL OR event_type = ANY($4) THEN payload ELSE ''::bytea END,
       metadata, recorded_at, prev_hash, hash,
       tx_id >= $3::bigint::text::xid8 AS recent
FROM events
WHERE position > $1 AND position <= $2
ORDER BY position
