-- Every insert into the log takes the log lock (ADR 0002, amendment c).
--
-- Positions are handed out in commit order only if every transaction that inserts into
-- `events` holds `pg_advisory_xact_lock(hashtext('carelog.events.append'))` from its
-- insert to its commit. carelog's appends take it first (store/sql/lock_log.sql); this
-- trigger makes the database take it for any other writer too (a hand-written repair, a
-- future tool), before the statement allocates a single position. For carelog's own
-- appends it is a re-entrant no-op. Readers of the global log rely on it: they page by
-- position with no transaction-id horizon (store/sql/read_all.sql).
--
-- Only a superuser with `session_replication_role = replica` (which switches off every
-- trigger, the append-only ones included) can insert without it.

CREATE FUNCTION events_take_log_lock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('carelog.events.append')::bigint);
    RETURN NULL;
END;
$$;

-- The owner gave up TRIGGER on `events` in 0001; it takes it back for this one trigger
-- and gives it up again, in this migration's transaction.
GRANT TRIGGER ON events TO CURRENT_USER;

CREATE TRIGGER events_insert_under_log_lock
    BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_take_log_lock();

REVOKE TRIGGER ON events FROM CURRENT_USER;
