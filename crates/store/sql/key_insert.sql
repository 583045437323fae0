-- First use of a subject: two nodes may race; the loser re-reads the winner's key.
INSERT INTO subject_keys (subject_id, key_id, kek_id, wrapped_key)
VALUES ($1, $2, $3, $4)
ON CONFLICT (subject_id) DO NOTHING
RETURNING key_id
