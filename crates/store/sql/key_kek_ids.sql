SELECT DISTINCT kek_id FROM subject_keys WHERE kek_id IS NOT NULL
