-- The one definition of which audit entries (the `audit_feed` read model) a filter
-- matches; audit_search.sql and audit_search_count.sql follow it (crates/store::audit
-- joins the texts). Every given filter must match (NULL: any): $1 action,
-- $2 resource_type, $3 resource_id, $4 actor (user id), $5 outcome, $6 from, $7 to
-- (inclusive), $8 organisations (NULL: every one). The statements are planned with
-- their parameters (never a generic plan), so the NULL tests fold away and each query
-- gets the indexes of its own filters.
WITH matched AS NOT MATERIALIZED (
  SELECT f.*
  FROM audit_feed f
  WHERE ($1::text IS NULL OR f.action = $1)
    AND ($2::text IS NULL OR f.resource_type = $2)
    AND ($3::text IS NULL OR f.resource_id = $3)
    AND ($4::uuid IS NULL OR f.actor_id = $4)
    AND ($5::text IS NULL OR f.outcome = $5)
    AND ($6::timestamptz IS NULL OR f.recorded_at >= $6)
    AND ($7::timestamptz IS NULL OR f.recorded_at <= $7)
    -- Scope: NULL is platform-wide; else entries within these organisations, and
    -- entries about their patients and their patients' records.
    AND ($8::uuid[] IS NULL
         OR f.org_id = ANY($8)
         OR (f.resource_type = 'patient' AND EXISTS (
               SELECT 1 FROM patient_index p
               WHERE p.patient_id::text = f.resource_id AND p.org_id = ANY($8)))
         OR (f.resource_type = 'clinical_record' AND EXISTS (
               SELECT 1 FROM record_index r JOIN patient_index p ON p.patient_id = r.patient_id
               WHERE r.record_id::text = f.resource_id AND p.org_id = ANY($8))))
)
