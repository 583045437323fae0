-- Serialises read-model schema creation (projections/<name>.sql) across processes
-- starting at once, until the end of the transaction.
SELECT pg_advisory_xact_lock(hashtext('carelog.read_model_schema'))
