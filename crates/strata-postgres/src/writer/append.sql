-- Phase 2 of a batch, one statement: take the global position lock, insert
-- every accepted event, advance the stream heads and queue the notification.
--
-- The UPDATE of the single `global_position` row is what orders commits: its
-- row lock is held until this transaction commits, so the next batch (from
-- this process or any other) gets higher positions only after these are
-- committed and visible. `recorded_at` is the database clock clamped to never
-- go back along $all.
--
-- $1  number of events          $2..$8 event columns (one element per event)
-- $9..$11 stream heads           $12 notification channel
WITH pos AS (
    UPDATE {schema}.global_position
    SET last_position = last_position + $1,
        last_recorded_at = greatest(last_recorded_at, clock_timestamp())
    RETURNING last_position - $1 AS base, last_recorded_at AS recorded_at
), ev AS (
    INSERT INTO {schema}.events
        (position, event_id, stream_id, version, event_type, content_type, data, metadata, recorded_at)
    SELECT pos.base + e.ord, e.event_id, e.stream_id, e.version, e.event_type,
           e.content_type, e.data, e.metadata::jsonb, pos.recorded_at
    FROM pos,
         unnest($2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::int2[], $7::bytea[], $8::text[])
             WITH ORDINALITY AS e(event_id, stream_id, version, event_type, content_type, data, metadata, ord)
), st AS (
    UPDATE {schema}.streams s
    SET version = u.version, last_position = pos.base + u.last_offset
    FROM pos, unnest($9::text[], $10::bigint[], $11::bigint[]) AS u(stream_id, version, last_offset)
    WHERE s.stream_id = u.stream_id
), note AS (
    SELECT pg_notify($12, (pos.base + $1)::text) FROM pos
)
SELECT pos.base, pos.recorded_at, (SELECT count(*) FROM note) AS notified
FROM pos
