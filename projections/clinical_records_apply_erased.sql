-- The record's patient was erased (key destroyed): every row of the record goes.
WITH gone AS (DELETE FROM clinical_record_versions WHERE record_id = $1)
DELETE FROM clinical_records WHERE record_id = $1
