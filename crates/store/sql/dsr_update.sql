-- A data-subject request decided or completed (in the transaction appending the event).
-- Never moves back to an older version; the first decision's actor and time are kept.
UPDATE dsr_requests
SET status       = $2,
    decided_by   = COALESCE(decided_by, $3),
    decided_at   = COALESCE(decided_at, $4),
    completed_at = COALESCE(completed_at, $5),
    version      = $6,
    position     = $7
WHERE dsr_id = $1 AND version <= $6
