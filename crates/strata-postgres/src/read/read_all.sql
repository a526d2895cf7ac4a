-- $all from a position, in position order, through a filter. `{filter}` is
-- replaced by zero or more `AND ...` conditions on parameters $3, $4, ...
-- (see read.rs), each served by an index: event type, category and
-- correlation id have (column, position) indexes.
--
-- Retention hides events of governed streams (stream_retention, read in this
-- statement's snapshot); deletion does not. The check is a per-row subplan
-- (a sub-select under OR is never turned into a join), so an event costs
-- one probe of the stream and metadata keys — and nothing when the store
-- has no metadata at all: the first branch is evaluated once per statement.
-- Hidden events are skipped before LIMIT, so a page still fills up.
SELECT e.position, e.event_id, e.stream_id, e.version, e.event_type, e.content_type, e.data,
       e.metadata::text, e.recorded_at
FROM {schema}.events e
WHERE e.position >= $1 {filter}
  AND (NOT EXISTS (SELECT FROM {schema}.stream_metadata)
       OR NOT EXISTS (
           SELECT FROM {schema}.stream_retention r
           WHERE r.stream_id = e.stream_id AND r.governed
             AND (e.version < r.kept_from OR e.recorded_at < r.kept_since)))
ORDER BY e.position
LIMIT $2
