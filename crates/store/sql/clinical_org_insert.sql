-- A new organisation (in the transaction appending its OrganizationCreated).
INSERT INTO organizations (org_id, created_at) VALUES ($1, $2)
