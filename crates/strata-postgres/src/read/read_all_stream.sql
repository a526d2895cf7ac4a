-- $all through a filter naming one stream: within a stream, positions grow
-- with versions, so ordering by version walks the (stream_id, version) index
-- and yields position order. `{filter}` as in read_all.sql; $3 is the stream.
SELECT position, event_id, stream_id, version, event_type, content_type, data,
       metadata::text, recorded_at
FROM {schema}.events
WHERE stream_id = $3 AND position >= $1 {filter}
ORDER BY version
LIMIT $2
