-- Clinical state that security decisions read (DESIGN.md "Consistency of decisions"):
-- organisations and memberships, which organisation holds a patient's chart and which
-- account is the patient's own, which patient a record belongs to, and emergency grants.
-- Written in the same transaction as the events that change them
-- (EventStore::append_in_tx, crates/store/src/clinical.rs), never by a projector, so a
-- decision never reads state behind the log (a removed member is refused at once).
--
-- Ids, roles, versions and times only: no PHI. Names, demographics and record content
-- live in the sealed event payloads and in the read models of projections/ (which are
-- not created here: projections/<name>.sql defines them, crates/projector::schemas).

CREATE TABLE organizations (
    org_id      uuid        PRIMARY KEY,
    created_at  timestamptz NOT NULL
);

-- One row per member; a role change updates the row, a removal deletes it.
CREATE TABLE org_members (
    org_id    uuid        NOT NULL REFERENCES organizations ON DELETE CASCADE,
    user_id   uuid        NOT NULL,
    role      text        NOT NULL
              CHECK (role IN ('ORG:ADMIN', 'ORG:DOCTOR', 'ORG:STAFF', 'ORG:AUDITOR')),
    added_at  timestamptz NOT NULL,
    PRIMARY KEY (org_id, user_id)
);
CREATE INDEX org_members_user ON org_members (user_id);

-- Each patient: the organisation holding the chart, the linked account, the erasure.
-- `version`/`position`: the patient stream's version and the global position of its
-- last event (the ETag, and what a client waits for to read its own write).
CREATE TABLE patient_index (
    patient_id  uuid        PRIMARY KEY,
    org_id      uuid        NOT NULL REFERENCES organizations,
    user_id     uuid,
    -- Set once by the GDPR erasure; never cleared (every access then answers 410).
    erased_at   timestamptz,
    version     bigint      NOT NULL CHECK (version > 0),
    position    bigint      NOT NULL CHECK (position > 0)
);
CREATE INDEX patient_index_org ON patient_index (org_id);
CREATE INDEX patient_index_user ON patient_index (user_id) WHERE user_id IS NOT NULL;

-- Each clinical record: its patient (tenant isolation of records follows the patient's).
CREATE TABLE record_index (
    record_id   uuid        PRIMARY KEY,
    patient_id  uuid        NOT NULL REFERENCES patient_index,
    version     bigint      NOT NULL CHECK (version > 0),
    position    bigint      NOT NULL CHECK (position > 0)
);
CREATE INDEX record_index_patient ON record_index (patient_id);

-- Emergency ("break-glass") grants; one ends by itself at `expires_at`. The reason is
-- free text (possibly PHI): it is only in the sealed event.
CREATE TABLE emergency_grants (
    grant_id    uuid        PRIMARY KEY,
    patient_id  uuid        NOT NULL REFERENCES patient_index,
    user_id     uuid        NOT NULL,
    granted_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    CHECK (expires_at > granted_at)
);
CREATE INDEX emergency_grants_holder ON emergency_grants (patient_id, user_id);

REVOKE ALL ON organizations, org_members, patient_index, record_index, emergency_grants
    FROM PUBLIC;
