-- TEST-ONLY: the naive design (docs/adr/0005-postgres-global-order.md).
-- Positions come from the plain sequence default, taken at insert time with
-- no lock held to commit, so two transactions can commit out of position
-- order and a reader can skip the lower position for ever. Used only through
-- `PgConfig::danger_naive_ordering` (feature `naive-ordering`) to prove that
-- the ordering tests catch this design. Same parameters as append.sql.
WITH ev AS (
    INSERT INTO {schema}.events
        (event_id, stream_id, version, event_type, content_type, data, metadata, recorded_at, tags)
    SELECT e.event_id, e.stream_id, e.version, e.event_type,
           e.content_type, e.data, e.metadata::jsonb, clock_timestamp(), string_to_array(e.tags, ' ')
    FROM unnest($2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::int2[], $7::bytea[], $8::text[], $18::text[])
             WITH ORDINALITY AS e(event_id, stream_id, version, event_type, content_type, data, metadata, tags, ord)
    WHERE $1::bigint > 0
    ORDER BY e.ord
    RETURNING position, event_id, stream_id, tags
), tg AS (
    INSERT INTO {schema}.event_tags (tag, position)
    SELECT t.tag, ev.position FROM ev CROSS JOIN LATERAL unnest(ev.tags) AS t(tag)
), st AS (
    UPDATE {schema}.streams s
    SET version = u.version,
        last_position = (SELECT max(ev.position) FROM ev WHERE ev.stream_id = u.stream_id)
    FROM unnest($9::text[], $10::bigint[], $11::bigint[]) AS u(stream_id, version, last_offset)
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
    SELECT pg_notify($12, max(position)::text) FROM ev
)
SELECT ev.position, ev.event_id, (SELECT count(*) FROM note) AS notified
FROM ev
