-- A patient's data-subject requests, oldest first.
SELECT dsr_id, patient_id, kind, status, requested_by, requested_at, decided_by, decided_at,
       completed_at, version, position
FROM dsr_requests
WHERE patient_id = $1
ORDER BY requested_at, dsr_id
