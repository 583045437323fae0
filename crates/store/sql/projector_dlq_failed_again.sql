-- A retry failed again: one more attempt, the new error (no PHI), when.
UPDATE dlq_entries
SET attempts = attempts + 1, error = $2, last_failed_at = now(),
    status = 'failed', first_failed_at = COALESCE(first_failed_at, now())
WHERE id = $1
