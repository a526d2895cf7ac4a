-- Phase 1 of a batch (partitioned layout): the event-id index table answers
-- with one probe instead of one per partition.
SELECT event_id, stream_id, version, position
FROM {schema}.event_ids
WHERE event_id = ANY($1::uuid[])
