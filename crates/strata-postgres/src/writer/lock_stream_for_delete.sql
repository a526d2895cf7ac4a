-- delete_stream / tombstone_stream: lock one stream's row and read its head.
SELECT version, deleted_through, tombstoned, last_position
FROM {schema}.streams
WHERE stream_id = $1
FOR UPDATE
