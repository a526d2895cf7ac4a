-- Migration 2 (partitioned layout): events partitioned by position range.
--
-- A unique index on a partitioned table must contain the partition key, so
-- the two global uniqueness rules are kept differently:
-- - event ids: the `event_ids` table (one row per event, primary key event_id),
--   written in the same statement as the events;
-- - (stream_id, version): a unique index on every partition, and globally by
--   the append protocol, which assigns versions under the stream row's lock.
-- Old partitions can be detached (`ALTER TABLE ... DETACH PARTITION`) and
-- archived without touching the live one; see docs/postgres.md.
CREATE SEQUENCE IF NOT EXISTS {schema}.events_position_seq;

CREATE TABLE IF NOT EXISTS {schema}.events (
    position       bigint      NOT NULL DEFAULT nextval('{schema}.events_position_seq'),
    event_id       uuid        NOT NULL,
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    event_type     text        NOT NULL,
    content_type   smallint    NOT NULL,
    data           bytea       NOT NULL,
    metadata       jsonb,
    correlation_id text GENERATED ALWAYS AS (metadata ->> 'correlation_id') STORED,
    category       text GENERATED ALWAYS AS (split_part(stream_id, '-', 1)) STORED,
    recorded_at    timestamptz NOT NULL,
    PRIMARY KEY (position)
) PARTITION BY RANGE (position);

CREATE INDEX IF NOT EXISTS events_type_idx ON {schema}.events (event_type, position);
CREATE INDEX IF NOT EXISTS events_category_idx ON {schema}.events (category, position);
CREATE INDEX IF NOT EXISTS events_correlation_idx ON {schema}.events (correlation_id, position)
    WHERE correlation_id IS NOT NULL;

CREATE TABLE IF NOT EXISTS {schema}.event_ids (
    event_id  uuid   PRIMARY KEY,
    stream_id text   NOT NULL,
    version   bigint NOT NULL,
    position  bigint NOT NULL
);

-- Creates partitions of `partition_positions` positions each until positions
-- up to `upto` are covered; returns the last covered position. Serialized by
-- the lock on the `partitions_through` settings row, so concurrent callers in
-- several processes create each partition once.
CREATE OR REPLACE FUNCTION {schema}.ensure_event_partitions(upto bigint)
RETURNS bigint
LANGUAGE plpgsql
AS $$
DECLARE
    size    bigint;
    through bigint;
    name    text;
BEGIN
    SELECT value::bigint INTO through FROM {schema}.settings
    WHERE key = 'partitions_through' FOR UPDATE;
    SELECT value::bigint INTO size FROM {schema}.settings
    WHERE key = 'partition_positions';
    WHILE through < upto LOOP
        name := 'events_p' || lpad((through / size)::text, 10, '0');
        EXECUTE format(
            'CREATE TABLE %I.%I PARTITION OF %I.events FOR VALUES FROM (%s) TO (%s)',
            {schema_name}, name, {schema_name}, through + 1, through + size + 1);
        EXECUTE format(
            'CREATE UNIQUE INDEX %I ON %I.%I (stream_id, version)',
            name || '_stream_version', {schema_name}, name);
        through := through + size;
    END LOOP;
    UPDATE {schema}.settings SET value = through::text WHERE key = 'partitions_through';
    RETURN through;
END;
$$;
