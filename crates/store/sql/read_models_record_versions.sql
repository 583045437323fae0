-- Every version of a record, oldest first.
SELECT * FROM clinical_record_versions WHERE record_id = $1 ORDER BY version
