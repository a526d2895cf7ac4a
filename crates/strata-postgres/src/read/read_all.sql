-- $all from a position, in position order, through a filter. `{filter}` is
-- replaced by zero or more `AND ...` conditions on parameters $3, $4, ...
-- (see read.rs), each served by an index: event type, category and
-- correlation id have (column, position) indexes.
--
-- Retention hides events of governed streams; deletion does not. The
-- settings are read in this statement's snapshot, and hidden events are
-- skipped before LIMIT, so a page still fills up. Sub-selects under OR are
-- never turned into joins: each branch is evaluated only when the ones
-- before it did not decide, so
-- 1. a store without metadata decides once per statement (an InitPlan);
-- 2. an event of a stream without settings that is no metadata stream
--    costs one key probe of stream_metadata (or of a hash of it, when the
--    planner finds building one cheaper);
-- 3. only events of governed streams are checked against stream_retention.
SELECT e.position, e.event_id, e.stream_id, e.version, e.event_type, e.content_type, e.data,
       e.metadata::text, e.recorded_at, e.tags
FROM {schema}.events e
WHERE e.position >= $1 {filter}
  AND (NOT EXISTS (SELECT FROM {schema}.stream_metadata)
       OR NOT (starts_with(e.stream_id, '$$')
               OR EXISTS (SELECT FROM {schema}.stream_metadata m WHERE m.stream_id = e.stream_id))
       OR NOT EXISTS (
           SELECT FROM {schema}.stream_retention r
           WHERE r.stream_id = e.stream_id AND r.governed
             AND (e.version < r.kept_from OR e.recorded_at < r.kept_since)))
ORDER BY e.position
LIMIT $2
