-- Takes the session advisory lock of one projection under one NATS prefix, without
-- waiting: true when this session now holds it (the active projector). Held until the
-- session ends (or is unlocked). $1 = prefix, $2 = projection name.
SELECT pg_try_advisory_lock(hashtext('carelog.projector.' || $1 || '.' || $2)) AS locked
