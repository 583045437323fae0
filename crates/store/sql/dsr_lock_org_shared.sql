-- Serialises an erasure's approval with legal holds of the patient's organisation: an
-- approval checking for a hold (FOR SHARE) and a hold placed or lifted (FOR UPDATE,
-- dsr_lock_org_exclusive.sql) cannot pass each other.
SELECT org_id FROM organizations WHERE org_id = $1 FOR SHARE
