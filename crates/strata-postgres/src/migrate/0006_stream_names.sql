-- Migration 6: listing streams (EventStore::list_streams) pages through
-- stream names in byte order, whatever the database's collation: this
-- index serves `stream_id COLLATE "C"` ranges and order
-- (read/list_streams.sql).
CREATE INDEX IF NOT EXISTS streams_by_name ON {schema}.streams (stream_id COLLATE "C");
