-- The stored keys of several subjects at once (a rebuild prefetches a batch's keys).
SELECT subject_id, key_id, kek_id, wrapped_key FROM subject_keys WHERE subject_id = ANY($1)
