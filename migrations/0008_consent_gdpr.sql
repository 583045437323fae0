-- Consent, session consents, data-subject requests (GDPR) and legal holds: the current
-- state that access decisions and the erasure workflow read (DESIGN.md "Consistency of
-- decisions"). Written in the same transaction as the events that change them
-- (EventStore::append_in_tx; crates/store/src/consent.rs, crates/store/src/dsr.rs), never
-- by a projector: a revoke stops access on the very next request.
--
-- Ids, enumerations, versions and times only: no PHI. Free-text reasons (of an erasure
-- request, of a rejection) live only in the sealed event payloads.

-- One row per consent (stream `consent-<uuid>`). A grant names an organisation or a
-- user; `status` is the lifecycle state (expiry is `expires_at` compared with now).
CREATE TABLE consents (
    consent_id       uuid        PRIMARY KEY,
    patient_id       uuid        NOT NULL REFERENCES patient_index,
    grantee_org_id   uuid        REFERENCES organizations,
    grantee_user_id  uuid,
    scope            text        NOT NULL
                     CHECK (scope IN ('all', 'demographics', 'clinical_records')),
    purpose          text        NOT NULL
                     CHECK (purpose IN ('treatment', 'payment', 'operations', 'research')),
    status           text        NOT NULL
                     CHECK (status IN ('requested', 'active', 'declined', 'revoked')),
    expires_at       timestamptz,
    -- The doctor who asked (a request), else null (a grant by the patient).
    requested_by     uuid,
    created_at       timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    version          bigint      NOT NULL CHECK (version > 0),
    position         bigint      NOT NULL CHECK (position > 0),
    CHECK ((grantee_org_id IS NULL) <> (grantee_user_id IS NULL))
);
CREATE INDEX consents_patient ON consents (patient_id);
CREATE INDEX consents_grantee_org ON consents (grantee_org_id) WHERE grantee_org_id IS NOT NULL;
CREATE INDEX consents_grantee_user ON consents (grantee_user_id) WHERE grantee_user_id IS NOT NULL;

-- One row per consent to record a clinical session or to AI transcription (stream
-- `session_consent-<uuid>`).
CREATE TABLE session_consents (
    consent_id  uuid        PRIMARY KEY,
    patient_id  uuid        NOT NULL REFERENCES patient_index,
    kind        text        NOT NULL CHECK (kind IN ('recording', 'ai_transcription')),
    org_id      uuid        REFERENCES organizations,
    user_id     uuid,
    status      text        NOT NULL CHECK (status IN ('active', 'revoked')),
    expires_at  timestamptz,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    version     bigint      NOT NULL CHECK (version > 0),
    position    bigint      NOT NULL CHECK (position > 0)
);
CREATE INDEX session_consents_patient ON session_consents (patient_id);

-- One row per data-subject request (stream `dsr-<uuid>`). At most one erasure of a
-- patient is open (pending or approved) at a time.
CREATE TABLE dsr_requests (
    dsr_id        uuid        PRIMARY KEY,
    patient_id    uuid        NOT NULL REFERENCES patient_index,
    kind          text        NOT NULL CHECK (kind IN ('erasure', 'export')),
    status        text        NOT NULL
                  CHECK (status IN ('pending', 'approved', 'completed', 'rejected')),
    requested_by  uuid        NOT NULL,
    requested_at  timestamptz NOT NULL,
    decided_by    uuid,
    decided_at    timestamptz,
    completed_at  timestamptz,
    version       bigint      NOT NULL CHECK (version > 0),
    position      bigint      NOT NULL CHECK (position > 0)
);
CREATE INDEX dsr_requests_patient ON dsr_requests (patient_id);
CREATE UNIQUE INDEX dsr_requests_one_open_erasure ON dsr_requests (patient_id)
    WHERE kind = 'erasure' AND status IN ('pending', 'approved');

-- Legal-retention holds on an organisation's records: while one is in place, erasures
-- of its patients cannot be approved (409 with the reason). None by default. The reason
-- is an administrator's case reference, not patient data.
CREATE TABLE legal_holds (
    org_id     uuid        PRIMARY KEY REFERENCES organizations,
    reason     text        NOT NULL CHECK (length(reason) BETWEEN 1 AND 500),
    placed_by  uuid        NOT NULL,
    placed_at  timestamptz NOT NULL
);

REVOKE ALL ON consents, session_consents, dsr_requests, legal_holds FROM PUBLIC;
