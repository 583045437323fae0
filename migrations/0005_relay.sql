-- The relay's checkpoint (crates/bus): the position of the last event JetStream has
-- acknowledged, one row per NATS prefix (`CARELOG_NATS_PREFIX`, the row's name; '' for
-- no prefix). Only the relay holding the session advisory lock
-- `hashtext('carelog.relay.' || name)` writes its row, so several nodes may run relays.
-- Re-publishing from a checkpoint that lags behind what was acknowledged is harmless:
-- JetStream drops the duplicates by Nats-Msg-Id (the event id).

CREATE TABLE relay_checkpoints (
    name        text        PRIMARY KEY,
    position    bigint      NOT NULL CHECK (position >= 0),
    updated_at  timestamptz
);

REVOKE ALL ON relay_checkpoints FROM PUBLIC;
