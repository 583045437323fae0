-- Everything an access decision on a patient reads, current and in one snapshot: the
-- patient's facts; the emergency grants of user $2 on them still running at $3; the
-- consents in force (state `active`: the policy compares `expires_at` with now). One
-- statement instead of three keeps a PHI read to few round trips. Grants and consents
-- come as parallel arrays (NULL when there are none), in a stable order.
SELECT p.patient_id, p.org_id, p.user_id, p.erased_at IS NOT NULL AS erased,
       p.version, p.position,
       g.grant_ids, g.grant_expires_at,
       c.grantee_org_ids, c.grantee_user_ids, c.scopes, c.statuses, c.expires_at
FROM patient_index p
CROSS JOIN LATERAL (
    SELECT array_agg(grant_id ORDER BY expires_at DESC, grant_id) AS grant_ids,
           array_agg(expires_at ORDER BY expires_at DESC, grant_id) AS grant_expires_at
    FROM emergency_grants
    WHERE patient_id = p.patient_id AND user_id = $2 AND granted_at <= $3 AND expires_at > $3
) g
CROSS JOIN LATERAL (
    SELECT array_agg(grantee_org_id ORDER BY consent_id) AS grantee_org_ids,
           array_agg(grantee_user_id ORDER BY consent_id) AS grantee_user_ids,
           array_agg(scope ORDER BY consent_id) AS scopes,
           array_agg(status ORDER BY consent_id) AS statuses,
           array_agg(expires_at ORDER BY consent_id) AS expires_at
    FROM consents
    WHERE patient_id = p.patient_id AND status = 'active'
) c
WHERE p.patient_id = $1
