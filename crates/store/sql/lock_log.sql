-- Serialises position allocation: held from the insert to the commit, so positions are
-- handed out in commit order. Key = hashtext('carelog.events.append').
SELECT pg_advisory_xact_lock(hashtext('carelog.events.append')::bigint)
