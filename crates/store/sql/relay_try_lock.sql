-- Takes the relay's session advisory lock for one NATS prefix, without waiting: true when
-- this session now holds it. Held until the session ends (or is unlocked).
SELECT pg_try_advisory_lock(hashtext('carelog.relay.' || $1)) AS locked
