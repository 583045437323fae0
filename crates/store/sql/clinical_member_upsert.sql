-- A member added, or their org role changed (the first `added_at` is kept).
INSERT INTO org_members (org_id, user_id, role, added_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (org_id, user_id) DO UPDATE SET role = EXCLUDED.role
