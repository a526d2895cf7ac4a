-- tombstone_stream: make sure the row exists so it can be locked.
INSERT INTO {schema}.streams (stream_id) VALUES ($1)
ON CONFLICT (stream_id) DO NOTHING
