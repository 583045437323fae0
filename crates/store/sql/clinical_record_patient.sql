-- Whose record this is, and its current version.
SELECT patient_id, version, position FROM record_index WHERE record_id = $1
