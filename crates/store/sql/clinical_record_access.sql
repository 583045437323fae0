-- What an access decision on record $1 by user $2 at $3 reads, in one statement: the
-- record's index entry (its version and position) and what the decision on its patient
-- reads (migrations/0011_patient_access.sql). No row: no such record.
SELECT ri.record_id, ri.version AS record_version, ri.position AS record_position, a.*
FROM record_index ri
CROSS JOIN LATERAL patient_access(ri.patient_id, $2, $3) a
WHERE ri.record_id = $1
