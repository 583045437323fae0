-- What an access decision on a patient reads, as one set-returning SQL function, so the
-- statements that need it (store/sql/clinical_patient_access.sql, and
-- store/sql/clinical_patient_read.sql, which adds the patient's read-model row for a
-- read of demographics) share one definition instead of two copies of a security query.
--
-- One row for an existing patient (none otherwise): the patient's facts from
-- `patient_index`; the emergency grants of user $2 on them still running at $3; the
-- consents in force (state `active`; the policy compares `expires_at` with now). Grants
-- and consents come as parallel arrays (NULL when there are none), in a stable order.
-- All from one snapshot: the statement's.
--
-- LANGUAGE sql, STABLE, a single SELECT: PostgreSQL inlines it into the calling query,
-- so it is planned as if written out there. Column names differ from the read model's
-- (`patients`), so a join `USING (patient_id)` has no clashes.

CREATE FUNCTION patient_access(uuid, uuid, timestamptz)
RETURNS TABLE (
    patient_id         uuid,
    chart_org_id       uuid,
    account_user_id    uuid,
    erased             boolean,
    stream_version     bigint,
    stream_position    bigint,
    grant_ids          uuid[],
    grant_expires_at   timestamptz[],
    grantee_org_ids    uuid[],
    grantee_user_ids   uuid[],
    consent_scopes     text[],
    consent_statuses   text[],
    consent_expires_at timestamptz[]
)
LANGUAGE sql STABLE
AS $$
SELECT p.patient_id, p.org_id, p.user_id, p.erased_at IS NOT NULL, p.version, p.position,
       g.ids, g.expires_at,
       c.orgs, c.users, c.scopes, c.statuses, c.expires_at
FROM patient_index p
CROSS JOIN LATERAL (
    SELECT array_agg(grant_id ORDER BY expires_at DESC, grant_id) AS ids,
           array_agg(expires_at ORDER BY expires_at DESC, grant_id) AS expires_at
    FROM emergency_grants e
    WHERE e.patient_id = p.patient_id AND e.user_id = $2
      AND e.granted_at <= $3 AND e.expires_at > $3
) g
CROSS JOIN LATERAL (
    SELECT array_agg(grantee_org_id ORDER BY consent_id) AS orgs,
           array_agg(grantee_user_id ORDER BY consent_id) AS users,
           array_agg(scope ORDER BY consent_id) AS scopes,
           array_agg(status ORDER BY consent_id) AS statuses,
           array_agg(expires_at ORDER BY consent_id) AS expires_at
    FROM consents k
    WHERE k.patient_id = p.patient_id AND k.status = 'active'
) c
WHERE p.patient_id = $1
$$;

REVOKE ALL ON FUNCTION patient_access(uuid, uuid, timestamptz) FROM PUBLIC;
