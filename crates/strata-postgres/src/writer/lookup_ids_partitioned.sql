-- Phase 1 of a batch (partitioned layout): the event-id index table answers
-- with one probe per id instead of one per partition (see lookup_ids.sql).
SELECT e.event_id, e.stream_id, e.version, e.position
FROM unnest($1::uuid[]) AS i(event_id)
CROSS JOIN LATERAL (
    SELECT event_id, stream_id, version, position
    FROM {schema}.event_ids
    WHERE event_id = i.event_id
    LIMIT 1
) e
