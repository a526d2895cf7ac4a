-- Phase 1 of a batch: which of the batch's event ids are already recorded
-- (idempotent retries and conflicts are decided from this).
SELECT event_id, stream_id, version, position
FROM {schema}.events
WHERE event_id = ANY($1::uuid[])
