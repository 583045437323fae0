-- One record's current version (active or voided).
SELECT * FROM clinical_records WHERE record_id = $1
