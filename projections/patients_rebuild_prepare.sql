-- Rebuild of `patients`, step 1: an empty twin in the schema `carelog_rebuild` (same
-- columns, keys and index names). While it fills (the rebuild sets
-- `search_path = carelog_rebuild, public`, so the ordinary apply statements write to the
-- twin), queries keep reading `public.patients`.
CREATE SCHEMA IF NOT EXISTS carelog_rebuild;
DROP TABLE IF EXISTS carelog_rebuild.patients;
CREATE TABLE carelog_rebuild.patients (LIKE public.patients INCLUDING ALL);
