-- The legal hold on an organisation, if any.
SELECT org_id, reason, placed_by, placed_at FROM legal_holds WHERE org_id = $1
