-- Whether the organisation exists.
SELECT EXISTS (SELECT 1 FROM organizations WHERE org_id = $1)
