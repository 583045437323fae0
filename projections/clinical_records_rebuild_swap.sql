-- Rebuild of `clinical_records`, step 2 (in the transaction that holds the projection's
-- lock): the rebuilt twins replace both live tables at once. Readers see the old tables or
-- the new ones, never a mix.
DROP TABLE public.clinical_records;
DROP TABLE public.clinical_record_versions;
ALTER TABLE carelog_rebuild.clinical_records SET SCHEMA public;
ALTER TABLE carelog_rebuild.clinical_record_versions SET SCHEMA public;
REVOKE ALL ON public.clinical_records, public.clinical_record_versions FROM PUBLIC;
-- For the rest of this transaction, unqualified read-model tables are the rebuild twins.
SET LOCAL search_path = carelog_rebuild, public
