-- The statements that give a rebuild twin ($2, schema-qualified) the constraints and
-- indexes of its live table ($1, in `public`), for a rebuild that builds them on several
-- connections at once (crates/projector/src/rebuild.rs, `build_twin_indexes`): the same
-- names and definitions as projections/<name>_rebuild_indexes.sql gives them.
-- Phase 0, one statement per index, run concurrently (CREATE INDEX takes a SHARE lock,
-- which does not conflict with itself): every index, those behind a primary key or unique
-- constraint included. Phase 1, after them, one at a time: those constraints attached to
-- their index (`USING INDEX`, no second build), and any other constraint (exclusion,
-- deferrable) added whole. Within phase 0 the live index's size orders the statements,
-- largest last: the builders take statements from the end, so the largest builds start
-- first and the last to finish is a small one (no builder idles long at the end).
WITH live AS (
    SELECT ('public.' || quote_ident($1))::regclass AS rel
), defs AS (
    SELECT i.indexrelid, pg_relation_size(i.indexrelid) AS bytes,
           regexp_replace(pg_get_indexdef(i.indexrelid),
                          ' ON (public\.)?' || quote_ident($1) || ' USING ',
                          ' ON ' || $2 || ' USING ') AS def,
           k.conname, k.contype, k.condeferrable
    FROM pg_index i
    JOIN live ON i.indrelid = live.rel
    LEFT JOIN pg_constraint k ON k.conrelid = i.indrelid AND k.conindid = i.indexrelid
)
SELECT phase, statement
FROM (
    SELECT 0 AS phase, def AS statement, bytes
    FROM defs
    WHERE conname IS NULL OR (contype IN ('p', 'u') AND NOT condeferrable)
    UNION ALL
    SELECT 1, format('ALTER TABLE %s ADD CONSTRAINT %I %s USING INDEX %I', $2, conname,
                     CASE contype WHEN 'p' THEN 'PRIMARY KEY' ELSE 'UNIQUE' END, conname), 0
    FROM defs
    WHERE contype IN ('p', 'u') AND NOT condeferrable
    UNION ALL
    SELECT 1, format('ALTER TABLE %s ADD CONSTRAINT %I %s', $2, k.conname,
                     pg_get_constraintdef(k.oid)), 0
    FROM pg_constraint k
    JOIN live ON k.conrelid = live.rel
    WHERE k.contype = 'x' OR (k.contype IN ('p', 'u') AND k.condeferrable)
) ddl
ORDER BY phase, bytes, statement
