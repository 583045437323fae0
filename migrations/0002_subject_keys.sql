-- One data key (DEK) per subject (a patient, a user, or the platform itself), stored
-- wrapped by a master key (KEK). The KEK's id is kept beside the wrapped key so a
-- rotation can re-wrap rows one by one while old and new KEK are both configured.
--
-- Erasure destroys the wrapped key: wrapped_key and kek_id become NULL and the row stays
-- as a tombstone (so the subject cannot silently get a fresh key and new data).

CREATE TABLE subject_keys (
    subject_id    text        PRIMARY KEY,
    key_id        uuid        NOT NULL UNIQUE,
    kek_id        text,
    wrapped_key   bytea,
    created_at    timestamptz NOT NULL DEFAULT now(),
    rewrapped_at  timestamptz,
    destroyed_at  timestamptz,
    CONSTRAINT subject_keys_live_or_destroyed CHECK (
        (destroyed_at IS NULL AND wrapped_key IS NOT NULL AND kek_id IS NOT NULL)
        OR (destroyed_at IS NOT NULL AND wrapped_key IS NULL AND kek_id IS NULL)
    )
);

-- Rotation looks for keys still wrapped by an old KEK.
CREATE INDEX subject_keys_kek_id ON subject_keys (kek_id) WHERE kek_id IS NOT NULL;

REVOKE ALL ON subject_keys FROM PUBLIC;
