-- The patient's open (pending or approved) erasure request, if any.
SELECT dsr_id FROM dsr_requests
WHERE patient_id = $1 AND kind = 'erasure' AND status IN ('pending', 'approved')
