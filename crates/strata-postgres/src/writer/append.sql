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
-- $13..$17 metadata settings (one element per metadata stream written)
-- $18 each event's tags, space-separated (NULL for none)
WITH pos AS (
    UPDATE {schema}.global_position
    SET last_position = last_position + $1,
        last_recorded_at = greatest(last_recorded_at, clock_timestamp())
    RETURNING last_position - $1 AS base, last_recorded_at AS recorded_at
), input AS (
    SELECT pos.base + e.ord AS position, e.*
    FROM pos,
         unnest($2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::int2[], $7::bytea[], $8::text[], $18::text[])
             WITH ORDINALITY AS e(event_id, stream_id, version, event_type, content_type, data, metadata, tags, ord)
), ev AS (
    INSERT INTO {schema}.events
        (position, event_id, stream_id, version, event_type, content_type, data, metadata, recorded_at, tags)
    SELECT i.position, i.event_id, i.stream_id, i.version, i.event_type,
           i.content_type, i.data, i.metadata::jsonb, pos.recorded_at, string_to_array(i.tags, ' ')
    FROM input i, pos
), tg AS (
    -- Tags come as one space-separated text per event (a tag holds no
    -- whitespace; NULL for none), one `event_tags` row per tag.
    INSERT INTO {schema}.event_tags (tag, position)
    SELECT t.tag, i.position
    FROM input i CROSS JOIN LATERAL unnest(string_to_array(i.tags, ' ')) AS t(tag)
    WHERE i.tags IS NOT NULL
), st AS (
    UPDATE {schema}.streams s
    SET version = u.version, last_position = pos.base + u.last_offset
    FROM pos, unnest($9::text[], $10::bigint[], $11::bigint[]) AS u(stream_id, version, last_offset)
    WHERE s.stream_id = u.stream_id
), md AS (
    -- The settings of a metadata stream's latest event, in the same
    -- transaction as the event (migrate/0003_stream_metadata.sql). Only
    -- appends to `$$NAME` write row NAME, under that stream's row lock.
    INSERT INTO {schema}.stream_metadata
        (stream_id, metadata_version, max_count, max_age, truncate_before)
    SELECT * FROM unnest($13::text[], $14::bigint[], $15::bigint[], $16::bigint[], $17::bigint[])
    ON CONFLICT (stream_id) DO UPDATE
    SET metadata_version = excluded.metadata_version, max_count = excluded.max_count,
        max_age = excluded.max_age, truncate_before = excluded.truncate_before
), note AS (
    SELECT pg_notify($12, (pos.base + $1)::text) FROM pos
)
SELECT pos.base, pos.recorded_at, (SELECT count(*) FROM note) AS notified
FROM pos
