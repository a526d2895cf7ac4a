-- A query read (strata_core::dcb): the user events after $1 matching any
-- of the query's items, in position order, at most $2. `{candidates}` is
-- replaced by ` AND e.position IN (...)` with one branch per item, each an
-- index range after $1: `event_tags (tag, position)` on the item's first
-- tag, or `events_type_idx (event_type, position)` for an item with types
-- and no tags; it is empty when an item (or the query) matches every event.
-- `{matches}` is replaced by ` AND (item OR item ...)`, each item checked
-- on the event's row (all its tags, one of its types). Events of system
-- streams never match. Retention hides events exactly as in read_all.sql.
-- Also the check of a conditional append, with $2 = 1.
SELECT e.position, e.event_id, e.stream_id, e.version, e.event_type, e.content_type, e.data,
       e.metadata::text, e.recorded_at, e.tags
FROM {schema}.events e
WHERE e.position > $1 AND NOT starts_with(e.stream_id, '$') {candidates} {matches}
  AND (NOT EXISTS (SELECT FROM {schema}.stream_metadata)
       OR NOT (starts_with(e.stream_id, '$$')
               OR EXISTS (SELECT FROM {schema}.stream_metadata m WHERE m.stream_id = e.stream_id))
       OR NOT EXISTS (
           SELECT FROM {schema}.stream_retention r
           WHERE r.stream_id = e.stream_id AND r.governed
             AND (e.version < r.kept_from OR e.recorded_at < r.kept_since)))
ORDER BY e.position
LIMIT $2
