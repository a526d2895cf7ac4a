-- $all through a filter naming one stream: within a stream, positions grow
-- with versions, so ordering by version walks the (stream_id, version) index
-- and yields position order. `{filter}` as in read_all.sql; $3 is the stream.
-- What retention leaves of the stream (not deletion: see read_all.sql) is
-- read once per statement, in its snapshot, and bounds the index walk.
SELECT e.position, e.event_id, e.stream_id, e.version, e.event_type, e.content_type, e.data,
       e.metadata::text, e.recorded_at, e.tags
FROM {schema}.events e
WHERE e.stream_id = $3 AND e.position >= $1 {filter}
  AND e.version >= coalesce(
      (SELECT r.kept_from FROM {schema}.stream_retention r WHERE r.stream_id = $3), 1)
  AND e.recorded_at >= coalesce(
      (SELECT r.kept_since FROM {schema}.stream_retention r WHERE r.stream_id = $3), '-infinity')
ORDER BY e.version
LIMIT $2
