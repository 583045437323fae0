-- Serialises the erasure workflow of one patient (a request, its approval) with the
-- other writers of the patient's index row, until the caller commits.
SELECT patient_id FROM patient_index WHERE patient_id = $1 FOR UPDATE
