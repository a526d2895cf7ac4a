-- Phase 1 of a batch: lock the batch's stream rows (in one order) and read
-- their heads. A separate statement from the insert above, so it takes a new
-- snapshot that sees rows committed while the insert waited. Byte order
-- ("C"), the order the batch sorted its streams in.
SELECT stream_id, version, deleted_through, tombstoned, last_position
FROM {schema}.streams
WHERE stream_id = ANY($1::text[])
ORDER BY stream_id COLLATE "C"
FOR UPDATE
