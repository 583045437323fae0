-- How many events are set aside (failed and waiting).
SELECT count(*) FROM dlq_entries
