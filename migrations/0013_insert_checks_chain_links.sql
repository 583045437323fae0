-- The append statement refuses an event that does not link to its stream's head.
--
-- `crates/store/sql/insert_events.sql` checks, for every row it inserts, that the row is
-- its stream's first event on the genesis hash, or follows the event one version below
-- (stored, or earlier in the same statement) and carries that event's hash as its
-- `prev_hash`; if one does not, it calls this function, which fails the statement, so
-- nothing of the batch is written. The `(stream_id, version)` key already refuses a
-- version that exists; this refuses one that skips a version or names the wrong
-- predecessor. A group commit that trusted a head it remembered (ADR 0004, amendment
-- "remembered heads") is thus refused if the log is not where it thought (a failover to a
-- standby that had not received the last commits, a restore), and its appends are
-- retried one by one on heads read from the log.
--
-- The message names positions in the batch only: no stream id, no payload.

CREATE FUNCTION events_unlinked(ord bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'row % of the appended batch does not follow its stream''s head', ord
        USING ERRCODE = 'CL001';
END;
$$;
