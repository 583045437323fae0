-- Read model `clinical_records` (projection "clinical_records",
-- crates/projector::clinical_records): the current version of every clinical record (the
-- list per patient hides voided ones) and every version ever written (history). PHI,
-- decrypted from the log: a record's rows are deleted when its patient's key is destroyed
-- (erasure), and are never in an error or log.
--
-- This file is the tables' only definition (read models are not in migrations/): run at
-- start-up after the migrations by crates/projector::ensure_schemas, idempotently. Index
-- names are the ones PostgreSQL gives `LIKE ... INCLUDING ALL` copies, so rebuilt twins
-- (clinical_records_rebuild_prepare.sql) swap in with the same names.
CREATE TABLE IF NOT EXISTS clinical_records (
    record_id    uuid        PRIMARY KEY,
    patient_id   uuid        NOT NULL,
    org_id       uuid        NOT NULL,
    kind         text        NOT NULL,
    code         text,
    title        text        NOT NULL,
    body         text        NOT NULL,
    data         jsonb,
    -- When the clinical fact was observed or decided (not when it was written).
    recorded_at  timestamptz NOT NULL,
    -- Who wrote the current content.
    author_id    uuid        NOT NULL,
    status       text        NOT NULL CHECK (status IN ('active', 'voided')),
    void_reason  text,
    -- The record stream's version (the ETag) and the position of its last applied event.
    version      bigint      NOT NULL,
    position     bigint      NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS clinical_records_patient_id_status_recorded_at_idx
    ON clinical_records (patient_id, status, recorded_at DESC);

REVOKE ALL ON clinical_records FROM PUBLIC;

-- One row per version of a record: what it said after each change, who changed it, when.
CREATE TABLE IF NOT EXISTS clinical_record_versions (
    record_id    uuid        NOT NULL,
    version      bigint      NOT NULL,
    change       text        NOT NULL CHECK (change IN ('created', 'amended', 'voided')),
    kind         text        NOT NULL,
    code         text,
    title        text        NOT NULL,
    body         text        NOT NULL,
    data         jsonb,
    recorded_at  timestamptz NOT NULL,
    -- Who made this change (the voider, for 'voided').
    author_id    uuid        NOT NULL,
    -- Why it was voided ('voided' only).
    reason       text,
    -- When the change was stored.
    at           timestamptz NOT NULL,
    PRIMARY KEY (record_id, version)
);

REVOKE ALL ON clinical_record_versions FROM PUBLIC;
