-- Read model `patients` (projection "patients", crates/projector::patients): the current
-- demographics of every patient, for the organisation's patient list (paginated, exact
-- `family_name` filter) and the patient detail. PHI, decrypted from the log: a patient's
-- row is deleted when their key is destroyed (erasure), and is never in an error or log.
--
-- This file is the table's only definition (read models are not in migrations/): run at
-- start-up after the migrations by crates/projector::ensure_schemas, idempotently. Index
-- names are the ones PostgreSQL gives `LIKE ... INCLUDING ALL` copies, so a rebuilt twin
-- (patients_rebuild_prepare.sql) swaps in with the same names.
CREATE TABLE IF NOT EXISTS patients (
    patient_id   uuid        PRIMARY KEY,
    org_id       uuid        NOT NULL,
    user_id      uuid,
    given_name   text        NOT NULL,
    family_name  text        NOT NULL,
    birth_date   date        NOT NULL,
    sex          text        NOT NULL,
    phone        text,
    email        text,
    address      text,
    national_id  text,
    -- The patient stream's version (the ETag) and the position of its last applied event.
    version      bigint      NOT NULL,
    position     bigint      NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

CREATE INDEX IF NOT EXISTS patients_org_id_family_name_idx ON patients (org_id, family_name);
CREATE INDEX IF NOT EXISTS patients_org_id_created_at_patient_id_idx
    ON patients (org_id, created_at, patient_id);

REVOKE ALL ON patients FROM PUBLIC;
