-- See dsr_lock_org.sql: the exclusive lock, taken by whoever places or lifts a hold.
SELECT org_id FROM organizations WHERE org_id = $1 FOR UPDATE
