-- Everything an access decision on patient $1 by user $2 at $3 reads, current and in one
-- snapshot (migrations/0011_patient_access.sql).
SELECT * FROM patient_access($1, $2, $3)
