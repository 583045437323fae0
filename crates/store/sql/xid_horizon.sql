-- Refuse a database whose stored transaction ids are ahead of this cluster's counter
-- (a logical restore into a younger cluster): gap-safe readers would hide those rows.
SELECT coalesce(h.max_tx_id >= h.next_xid, false) AS ahead,
       coalesce(h.max_tx_id::text, '-') AS max_tx_id,
       h.next_xid::text AS next_xid
FROM (SELECT (SELECT max(tx_id) FROM events) AS max_tx_id,
             pg_snapshot_xmax(pg_current_snapshot()) AS next_xid) AS h
