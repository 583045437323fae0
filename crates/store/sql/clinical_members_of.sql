-- An organisation's members, in the order they joined.
SELECT user_id, role, added_at FROM org_members WHERE org_id = $1 ORDER BY added_at, user_id
