-- PatientErased: every record of the patient and every version of them goes (the
-- records' own payloads can no longer be opened either; this empties the read model at
-- the erasure itself, whatever a projector's key cache still holds).
WITH gone AS (
    DELETE FROM clinical_record_versions v
    USING clinical_records r
    WHERE v.record_id = r.record_id AND r.patient_id = $1
)
DELETE FROM clinical_records WHERE patient_id = $1
