-- A member removed: refused from the next request on.
DELETE FROM org_members WHERE org_id = $1 AND user_id = $2
