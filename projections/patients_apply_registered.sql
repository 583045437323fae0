-- PatientRegistered: the patient's row (idempotent: a replayed event changes nothing).
INSERT INTO patients (patient_id, org_id, user_id, given_name, family_name, birth_date, sex,
                      phone, email, address, national_id, version, position, created_at,
                      updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14)
ON CONFLICT (patient_id) DO NOTHING
