-- A legal hold placed, or its reason replaced (in the transaction appending
-- LegalHoldPlaced).
INSERT INTO legal_holds (org_id, reason, placed_by, placed_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (org_id) DO UPDATE
SET reason = EXCLUDED.reason, placed_by = EXCLUDED.placed_by, placed_at = EXCLUDED.placed_at
