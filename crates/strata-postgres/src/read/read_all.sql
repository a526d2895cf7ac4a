-- $all from a position, in position order, through a filter. `{filter}` is
-- replaced by zero or more `AND ...` conditions on parameters $3, $4, ...
-- (see read.rs), each served by an index: event type, category and
-- correlation id have (column, position) indexes.
SELECT position, event_id, stream_id, version, event_type, content_type, data,
       metadata::text, recorded_at
FROM {schema}.events
WHERE position >= $1 {filter}
ORDER BY position
LIMIT $2
