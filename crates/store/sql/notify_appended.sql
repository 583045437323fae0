-- Wakes the relays (LISTEN carelog_appended) when the appending transaction commits:
-- a notification is transactional, delivered on commit and dropped on rollback.
-- PostgreSQL folds identical notifications of one transaction into one.
SELECT pg_notify('carelog_appended', '')
