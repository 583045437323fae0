-- Rebuild of `audit_feed`, after the bulk fill and before the catch-up and the swap: the
-- twin gets the constraints and indexes of the live table (as audit_feed.sql and any later
-- migration defined them, same names and definitions), built once over the filled table.
-- A duplicate position or event id fails here, and the live table stays as it was.
DO $$
DECLARE
    c record;
BEGIN
    -- More sort memory for these index builds only (until the end of the transaction).
    PERFORM set_config('maintenance_work_mem', '256MB', true);
    FOR c IN
        SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
        WHERE conrelid = 'public.audit_feed'::regclass AND contype IN ('p', 'u', 'x')
        ORDER BY conname
    LOOP
        EXECUTE format('ALTER TABLE carelog_rebuild.audit_feed ADD CONSTRAINT %I %s',
                       c.conname, c.def);
    END LOOP;
    FOR c IN
        SELECT pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
        WHERE i.indrelid = 'public.audit_feed'::regclass
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                          WHERE k.conrelid = i.indrelid AND k.conindid = i.indexrelid)
        ORDER BY i.indexrelid
    LOOP
        EXECUTE regexp_replace(c.def, ' ON (public\.)?audit_feed ', ' ON carelog_rebuild.audit_feed ');
    END LOOP;
END
$$;
