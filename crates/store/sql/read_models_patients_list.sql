-- An organisation's patients (optionally with exactly this family name), oldest first,
-- one page of them, and how many match in all (one row with NULL columns when the page
-- is empty).
WITH matching AS (
    SELECT * FROM patients
    WHERE org_id = $1 AND ($2::text IS NULL OR family_name = $2::text)
), page AS (
    SELECT * FROM matching
    ORDER BY created_at, patient_id
    OFFSET $3 LIMIT $4
)
SELECT (SELECT count(*) FROM matching) AS total, page.*
FROM (SELECT 1) AS one
LEFT JOIN page ON true
ORDER BY page.created_at, page.patient_id
