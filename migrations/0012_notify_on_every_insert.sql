-- Every insert into the log also wakes the relays (LISTEN carelog_appended), from the
-- statement trigger that takes the log lock (0010) instead of a separate statement of
-- the appending transaction.
--
-- A notification is transactional: delivered when the inserting transaction commits,
-- dropped if it rolls back; PostgreSQL folds identical notifications of one transaction
-- into one. Done here, an append needs no statement of its own for it, and a batch of
-- new streams is a single INSERT that locks, notifies and commits in one round trip
-- (crates/store/src/append.rs). Any other writer (a hand-written repair) wakes the
-- relays too.

CREATE OR REPLACE FUNCTION events_take_log_lock() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('carelog.events.append')::bigint);
    PERFORM pg_notify('carelog_appended', '');
    RETURN NULL;
END;
$$;
