-- Rebuild of `clinical_records`, step 1: empty twins of both tables in the schema
-- `carelog_rebuild` (same columns, keys and index names). While they fill (the rebuild sets
-- `search_path = carelog_rebuild, public`, so the ordinary apply statements write to the
-- twins), queries keep reading the live tables.
CREATE SCHEMA IF NOT EXISTS carelog_rebuild;
DROP TABLE IF EXISTS carelog_rebuild.clinical_records;
DROP TABLE IF EXISTS carelog_rebuild.clinical_record_versions;
CREATE TABLE carelog_rebuild.clinical_records (LIKE public.clinical_records INCLUDING ALL);
CREATE TABLE carelog_rebuild.clinical_record_versions
    (LIKE public.clinical_record_versions INCLUDING ALL);
