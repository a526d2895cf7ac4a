-- Phase 2 of a batch (partitioned layout): as append.sql, and every event id
-- also goes into `event_ids`, whose primary key keeps ids unique across
-- partitions. See append.sql for the ordering argument.
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
    -- One `event_tags` row per tag (see append.sql).
    INSERT INTO {schema}.event_tags (tag, position)
    SELECT t.tag, i.position
    FROM input i CROSS JOIN LATERAL unnest(string_to_array(i.tags, ' ')) AS t(tag)
    WHERE i.tags IS NOT NULL
), ids AS (
    INSERT INTO {schema}.event_ids (event_id, stream_id, version, position)
    SELECT i.event_id, i.stream_id, i.version, i.position FROM input i
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
