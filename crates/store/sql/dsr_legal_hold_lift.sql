-- A legal hold lifted (in the transaction appending LegalHoldLifted).
DELETE FROM legal_holds WHERE org_id = $1
