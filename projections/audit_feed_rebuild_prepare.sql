-- Rebuild of `audit_feed`, step 1: an empty twin in the schema `carelog_rebuild`, with
-- its own empty spans and the live table's triggers. While it fills (the rebuild sets
-- `search_path = carelog_rebuild, public`, so the ordinary apply statement writes to the
-- twin, and the spans' trigger to the twin's spans), queries keep reading
-- `public.audit_feed` and `public.audit_feed_spans`.
CREATE SCHEMA IF NOT EXISTS carelog_rebuild;
DROP TABLE IF EXISTS carelog_rebuild.audit_feed;
DROP TABLE IF EXISTS carelog_rebuild.audit_feed_spans;
CREATE TABLE carelog_rebuild.audit_feed (LIKE public.audit_feed INCLUDING ALL);
CREATE TABLE carelog_rebuild.audit_feed_spans (LIKE public.audit_feed_spans INCLUDING ALL);
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT pg_get_triggerdef(oid) AS def FROM pg_trigger
        WHERE tgrelid = 'public.audit_feed'::regclass AND NOT tgisinternal
        ORDER BY tgname
    LOOP
        EXECUTE regexp_replace(t.def, ' ON (public\.)?audit_feed ', ' ON carelog_rebuild.audit_feed ');
    END LOOP;
END
$$;
