-- Identity state that security decisions read: written in the same transaction as the
-- user's or session's events (EventStore::append_in_tx), never by a projector, so it is
-- always current. Personal data is not here: emails appear only as a keyed hash (the
-- blind index, for login lookup) and in the sealed event payloads.

CREATE TABLE users (
    user_id         uuid        PRIMARY KEY,
    -- HMAC-SHA256 of the normalised email under a key derived from the system data key.
    email_index     bytea       NOT NULL,
    -- Argon2id PHC string.
    password_hash   text        NOT NULL,
    base_role       text        CHECK (base_role IN ('BASE:DOCTOR', 'BASE:PATIENT')),
    platform_roles  text[]      NOT NULL DEFAULT '{}',
    mfa_enabled     boolean     NOT NULL DEFAULT false,
    -- TOTP secrets, sealed with the user's data key (pending = enrolled, not yet verified).
    totp_secret     bytea,
    totp_pending    bytea,
    -- The last accepted TOTP time step: a code is accepted once only.
    totp_last_step  bigint,
    failed_logins   integer     NOT NULL DEFAULT 0,
    lock_count      integer     NOT NULL DEFAULT 0,
    locked_until    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_index_key UNIQUE (email_index),
    CONSTRAINT users_mfa_has_secret CHECK (NOT mfa_enabled OR totp_secret IS NOT NULL)
);

-- One-time MFA recovery codes, stored as SHA-256 (they are random, 80 bits).
CREATE TABLE recovery_codes (
    user_id    uuid        NOT NULL REFERENCES users ON DELETE CASCADE,
    code_hash  bytea       NOT NULL,
    used_at    timestamptz,
    PRIMARY KEY (user_id, code_hash)
);

-- One row per login session; the current refresh token is stored hashed.
CREATE TABLE sessions (
    session_id      uuid        PRIMARY KEY,
    user_id         uuid        NOT NULL REFERENCES users ON DELETE CASCADE,
    refresh_hash    bytea       NOT NULL,
    mfa             boolean     NOT NULL,
    created_at      timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    revoked_at      timestamptz,
    revoked_reason  text,
    CONSTRAINT sessions_refresh_hash_key UNIQUE (refresh_hash)
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

-- Refresh tokens already used: presenting one again revokes its session (theft).
CREATE TABLE spent_refresh_tokens (
    refresh_hash  bytea       PRIMARY KEY,
    session_id    uuid        NOT NULL REFERENCES sessions ON DELETE CASCADE,
    spent_at      timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON users, recovery_codes, sessions, spent_refresh_tokens FROM PUBLIC;
