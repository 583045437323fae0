-- A read of record $1 by user $2 at $3, in one statement: what the access decision reads
-- (as clinical_record_access.sql) and the record's read-model row, if the projection has
-- one. The row is only returned to the caller once the policy has allowed the read.
SELECT *
FROM (
    SELECT ri.record_id, ri.version AS record_version, ri.position AS record_position, a.*
    FROM record_index ri
    CROSS JOIN LATERAL patient_access(ri.patient_id, $2, $3) a
    WHERE ri.record_id = $1
) indexed
LEFT JOIN clinical_records USING (record_id, patient_id)
