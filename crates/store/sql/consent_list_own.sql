-- A user's own consents: those on the charts linked to their account ($1) and those
-- granted to or requested by them as a user ($2); patients not erased; newest first, one
-- page of them, and how many in all (one row with NULL columns when the page is empty).
WITH matching AS (
    SELECT c.* FROM consents c
    JOIN patient_index p ON p.patient_id = c.patient_id AND p.erased_at IS NULL
    WHERE c.patient_id = ANY($1::uuid[]) OR c.grantee_user_id = $2
), page AS (
    SELECT * FROM matching
    ORDER BY created_at DESC, consent_id DESC
    OFFSET $3 LIMIT $4
)
SELECT (SELECT count(*) FROM matching) AS total,
       page.consent_id, page.patient_id, page.grantee_org_id, page.grantee_user_id,
       page.scope, page.purpose, page.status, page.expires_at, page.requested_by,
       page.created_at, page.updated_at, page.version, page.position
FROM (SELECT 1) AS one
LEFT JOIN page ON true
ORDER BY page.created_at DESC, page.consent_id DESC
