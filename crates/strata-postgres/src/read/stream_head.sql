-- A stream's head, for stream_info.
SELECT version, deleted_through, tombstoned, last_position
FROM {schema}.streams
WHERE stream_id = $1
