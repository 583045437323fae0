-- One round trip for a whole group-commit batch. Rows are inserted in input order, so
-- positions within the batch follow it; callers match positions by event id anyway.
--
-- Every row must link to its stream's head: the row before it of the same stream in this
-- batch, else the stream's last stored event (one version below, with its hash as
-- `prev_hash`), else (version 1) the genesis hash. A row that does not fails the whole
-- statement (migration 0013), so a remembered head that was wrong costs a retry, never a
-- gap or a broken link in the log. The stored head is found as `stream_heads.sql` finds
-- it, one backward step on the `(stream_id, version)` index, which no plan turns into a
-- scan of the log: an `EXISTS` here became a hashed scan of all of `events` on a young
-- table.
WITH batch AS (
    SELECT t.*,
           lag(t.version) OVER same_stream AS before_version,
           lag(t.hash) OVER same_stream AS before_hash
    FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                $6::smallint[], $7::text[], $8::uuid[], $9::bytea[], $10::jsonb[],
                $11::timestamptz[], $12::bytea[], $13::bytea[])
        WITH ORDINALITY AS t(event_id, stream_id, stream_type, version, event_type,
                             schema_version, subject_id, key_id, payload, metadata,
                             recorded_at, prev_hash, hash, ord)
    WINDOW same_stream AS (PARTITION BY t.stream_id ORDER BY t.ord)
)
INSERT INTO events (event_id, stream_id, stream_type, version, event_type, schema_version,
                    subject_id, key_id, payload, metadata, recorded_at, prev_hash, hash)
SELECT event_id, stream_id, stream_type, version, event_type, schema_version,
       subject_id, key_id, payload, metadata, recorded_at, prev_hash, hash
FROM batch b
WHERE CASE
    WHEN b.before_version IS NOT NULL
         AND b.version = b.before_version + 1 AND b.prev_hash = b.before_hash
        THEN true
    WHEN b.before_version IS NULL AND b.version = 1
         AND b.prev_hash = '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea
        THEN true
    WHEN b.before_version IS NULL AND b.version > 1
         AND (SELECT e.version = b.version - 1 AND e.hash = b.prev_hash
              FROM events e
              WHERE e.stream_id = b.stream_id
              ORDER BY e.version DESC
              LIMIT 1)
        THEN true
    ELSE events_unlinked(b.ord)
END
ORDER BY ord
RETURNING position, event_id
