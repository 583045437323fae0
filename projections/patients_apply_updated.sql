-- PatientUpdated: the whole new state, applied only over an older version.
UPDATE patients
SET user_id     = $2,
    given_name  = $3,
    family_name = $4,
    birth_date  = $5,
    sex         = $6,
    phone       = $7,
    email       = $8,
    address     = $9,
    national_id = $10,
    version     = $11,
    position    = $12,
    updated_at  = $13
WHERE patient_id = $1 AND version < $11
