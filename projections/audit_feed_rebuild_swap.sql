-- Rebuild of `audit_feed`, step 2 (in the transaction that holds the projection's lock):
-- the rebuilt twin and its spans replace the live ones. Readers see the old tables or
-- the new ones, never a mix.
DROP TABLE public.audit_feed;
DROP TABLE public.audit_feed_spans;
ALTER TABLE carelog_rebuild.audit_feed SET SCHEMA public;
ALTER TABLE carelog_rebuild.audit_feed_spans SET SCHEMA public;
REVOKE ALL ON public.audit_feed FROM PUBLIC;
REVOKE ALL ON public.audit_feed_spans FROM PUBLIC;
