-- The patient was erased (GDPR): set once, the first time is kept.
UPDATE patient_index SET erased_at = COALESCE(erased_at, $2) WHERE patient_id = $1
