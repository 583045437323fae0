-- A user's organisation memberships, now.
SELECT org_id, role FROM org_members WHERE user_id = $1 ORDER BY org_id
