-- $all below a position, newest first, through a filter: read_all.sql walked
-- the other way. `{filter}` as there; $1 is the exclusive upper bound, $2
-- the count. Every index that serves read_all.sql (the position key, and
-- event type, category and correlation id with position) is walked
-- backwards from $1; in the partitioned layout the partitions are appended
-- newest first and those at or above $1 are pruned.
--
-- Retention hides events of governed streams exactly as in read_all.sql;
-- deletion does not.
SELECT e.position, e.event_id, e.stream_id, e.version, e.event_type, e.content_type, e.data,
       e.metadata::text, e.recorded_at, e.tags
FROM {schema}.events e
WHERE e.position < $1 {filter}
  AND (NOT EXISTS (SELECT FROM {schema}.stream_metadata)
       OR NOT (starts_with(e.stream_id, '$$')
               OR EXISTS (SELECT FROM {schema}.stream_metadata m WHERE m.stream_id = e.stream_id))
       OR NOT EXISTS (
           SELECT FROM {schema}.stream_retention r
           WHERE r.stream_id = e.stream_id AND r.governed
             AND (e.version < r.kept_from OR e.recorded_at < r.kept_since)))
ORDER BY e.position DESC
LIMIT $2
