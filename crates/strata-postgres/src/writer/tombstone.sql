-- tombstone_stream: refuse every later read and write, for ever. The row was
-- created (for a never-written stream) and locked by the statements before.
UPDATE {schema}.streams SET tombstoned = true WHERE stream_id = $1
