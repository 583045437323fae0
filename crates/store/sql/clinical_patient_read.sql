-- A read of patient $1's demographics by user $2 at $3: what the access decision reads
-- (migrations/0011_patient_access.sql) and the patient's read-model row, if the
-- projection has one, in one statement. The row is only returned to the caller once the
-- policy has allowed the read.
SELECT * FROM patient_access($1, $2, $3) LEFT JOIN patients USING (patient_id)
