-- $all below a position through a filter naming one stream, newest first:
-- read_all_stream.sql walked the other way, down the (stream_id, version)
-- index. `{filter}` as in read_all.sql; $1 is the exclusive upper bound,
-- $2 the count, $3 the stream.
SELECT e.position, e.event_id, e.stream_id, e.version, e.event_type, e.content_type, e.data,
       e.metadata::text, e.recorded_at, e.tags
FROM {schema}.events e
WHERE e.stream_id = $3 AND e.position < $1 {filter}
  AND e.version >= coalesce(
      (SELECT r.kept_from FROM {schema}.stream_retention r WHERE r.stream_id = $3), 1)
  AND e.recorded_at >= coalesce(
      (SELECT r.kept_since FROM {schema}.stream_retention r WHERE r.stream_id = $3), '-infinity')
ORDER BY e.version DESC
LIMIT $2
