-- Rebuild of `audit_feed`, step 2 (in the transaction that holds the projection's lock):
-- the rebuilt twin replaces the live table. Readers see the old table or the new one,
-- never a mix.
DROP TABLE public.audit_feed;
ALTER TABLE carelog_rebuild.audit_feed SET SCHEMA public;
REVOKE ALL ON public.audit_feed FROM PUBLIC;
