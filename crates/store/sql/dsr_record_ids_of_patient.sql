-- Every record of a patient (voided ones included), oldest first (record ids are UUIDv7).
SELECT record_id FROM record_index WHERE patient_id = $1 ORDER BY record_id
