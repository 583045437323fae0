-- Removes a dead letter once applied or discarded.
DELETE FROM dlq_entries WHERE id = $1
