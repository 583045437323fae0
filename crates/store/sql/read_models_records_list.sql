-- A patient's active records, most recently observed first, one page of them, and how
-- many there are in all (one row with NULL columns when the page is empty).
WITH matching AS (
    SELECT * FROM clinical_records
    WHERE patient_id = $1 AND status = 'active'
), page AS (
    SELECT * FROM matching
    ORDER BY recorded_at DESC, record_id DESC
    OFFSET $2 LIMIT $3
)
SELECT (SELECT count(*) FROM matching) AS total, page.*
FROM (SELECT 1) AS one
LEFT JOIN page ON true
ORDER BY page.recorded_at DESC, page.record_id DESC
