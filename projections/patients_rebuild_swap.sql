-- Rebuild of `patients`, step 2 (in the transaction that holds the projection's lock):
-- the rebuilt twin replaces the live table. Readers see the old table or the new one,
-- never a mix.
DROP TABLE public.patients;
ALTER TABLE carelog_rebuild.patients SET SCHEMA public;
REVOKE ALL ON public.patients FROM PUBLIC;
-- For the rest of this transaction, unqualified read-model tables are the rebuild twins.
SET LOCAL search_path = carelog_rebuild, public
