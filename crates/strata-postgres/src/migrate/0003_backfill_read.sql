-- Migration 3's data step: the latest event of every metadata stream
-- (`$$NAME`) written before the stream_metadata table existed.
SELECT s.stream_id, s.version, e.data
FROM {schema}.streams s
JOIN {schema}.events e ON e.stream_id = s.stream_id AND e.version = s.version
WHERE starts_with(s.stream_id, '$$') AND length(s.stream_id) > 2
