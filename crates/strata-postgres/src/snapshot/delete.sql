-- Removes every snapshot of a stream.
DELETE FROM {schema}.snapshots WHERE stream_id = $1
