-- Phase 1 of a batch: which of the batch's event ids are already recorded
-- (idempotent retries and conflicts are decided from this). One index probe
-- per id: the LIMIT keeps the planner from turning the lateral join into a
-- hash join over the whole table, which it prefers for long id lists.
SELECT e.event_id, e.stream_id, e.version, e.position
FROM unnest($1::uuid[]) AS i(event_id)
CROSS JOIN LATERAL (
    SELECT event_id, stream_id, version, position
    FROM {schema}.events
    WHERE event_id = i.event_id
    LIMIT 1
) e
