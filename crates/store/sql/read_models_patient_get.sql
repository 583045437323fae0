-- One patient's current demographics.
SELECT * FROM patients WHERE patient_id = $1
