-- For the rest of this transaction, unqualified read-model tables are the rebuild twins.
SET LOCAL search_path = carelog_rebuild, public
