-- One data-subject request, current.
SELECT dsr_id, patient_id, kind, status, requested_by, requested_at, decided_by, decided_at,
       completed_at, version, position
FROM dsr_requests
WHERE dsr_id = $1
