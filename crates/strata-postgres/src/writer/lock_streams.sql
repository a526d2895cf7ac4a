-- Phase 1 of a batch: lock the batch's stream rows and read their heads. A
-- separate statement from the insert above, so it takes a new snapshot that
-- sees rows committed while the insert waited. The lateral subquery (with its
-- row lock it is never flattened) runs once per stream in the order of $1,
-- which the batch sorted, so concurrent batches lock in one order; and each
-- run is a primary-key probe whatever the table's size.
SELECT s.stream_id, s.version, s.deleted_through, s.tombstoned, s.last_position
FROM unnest($1::text[]) WITH ORDINALITY AS i(stream_id, ord)
CROSS JOIN LATERAL (
    SELECT stream_id, version, deleted_through, tombstoned, last_position
    FROM {schema}.streams
    WHERE stream_id = i.stream_id
    FOR UPDATE
) s
ORDER BY i.ord
