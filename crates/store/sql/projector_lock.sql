-- Serialises a projection's batches with DLQ retries and discards (until commit).
SELECT pg_advisory_xact_lock(hashtext('carelog.projector.' || $1))
