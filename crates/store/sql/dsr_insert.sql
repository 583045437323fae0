-- A data-subject request (in the transaction appending its first event).
INSERT INTO dsr_requests (dsr_id, patient_id, kind, status, requested_by, requested_at,
                          decided_by, decided_at, completed_at, version, position)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
