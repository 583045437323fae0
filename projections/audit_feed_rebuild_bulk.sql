-- Rebuild of `audit_feed`, before the bulk fill (after audit_feed_rebuild_prepare.sql): the
-- empty twin loses its indexes and the constraints behind them, so the fill (binary COPY,
-- audit_feed_copy.sql) maintains none; audit_feed_rebuild_indexes.sql gives them back,
-- as the live table defines them, before the rebuild catches up and swaps.
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN
        SELECT conname FROM pg_constraint
        WHERE conrelid = 'carelog_rebuild.audit_feed'::regclass AND contype IN ('p', 'u', 'x')
    LOOP
        EXECUTE format('ALTER TABLE carelog_rebuild.audit_feed DROP CONSTRAINT %I', c.conname);
    END LOOP;
    FOR c IN
        SELECT indexrelid::regclass AS index FROM pg_index
        WHERE indrelid = 'carelog_rebuild.audit_feed'::regclass
    LOOP
        EXECUTE format('DROP INDEX %s', c.index);
    END LOOP;
END
$$;
