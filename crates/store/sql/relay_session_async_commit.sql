-- The relay's own session commits its checkpoint without waiting for the WAL flush
-- (crates/store/src/relay.rs explains why that is safe).
SET synchronous_commit = off
