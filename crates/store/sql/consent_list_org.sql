-- An organisation's consents: granted to it, or on the patients whose chart it holds;
-- patients not erased; newest first, one page of them, and how many in all (one row
-- with NULL columns when the page is empty).
WITH matching AS (
    SELECT c.* FROM consents c
    JOIN patient_index p ON p.patient_id = c.patient_id AND p.erased_at IS NULL
    WHERE c.grantee_org_id = $1 OR p.org_id = $1
), page AS (
    SELECT * FROM matching
    ORDER BY created_at DESC, consent_id DESC
    OFFSET $2 LIMIT $3
)
SELECT (SELECT count(*) FROM matching) AS total,
       page.consent_id, page.patient_id, page.grantee_org_id, page.grantee_user_id,
       page.scope, page.purpose, page.status, page.expires_at, page.requested_by,
       page.created_at, page.updated_at, page.version, page.position
FROM (SELECT 1) AS one
LEFT JOIN page ON true
ORDER BY page.created_at DESC, page.consent_id DESC
