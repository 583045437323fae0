-- Rebuild of `audit_feed`, step 1: an empty twin in the schema `carelog_rebuild`. While
-- it fills (the rebuild sets `search_path = carelog_rebuild, public`, so the ordinary
-- apply statement writes to the twin), queries keep reading `public.audit_feed`.
CREATE SCHEMA IF NOT EXISTS carelog_rebuild;
DROP TABLE IF EXISTS carelog_rebuild.audit_feed;
CREATE TABLE carelog_rebuild.audit_feed (LIKE public.audit_feed INCLUDING ALL);
