-- The patient's key was destroyed (erasure): their row goes.
DELETE FROM patients WHERE patient_id = $1
