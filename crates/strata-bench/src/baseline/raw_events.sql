-- The raw-insert baseline: a table shaped like `events` (same columns and
-- indexes) with a plain bigserial position, into which benchmarks insert
-- single rows with no checks, to measure what the database itself does.
CREATE TABLE IF NOT EXISTS {schema}.raw_events (
    position       bigserial   PRIMARY KEY,
    event_id       uuid        NOT NULL UNIQUE,
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    event_type     text        NOT NULL,
    content_type   smallint    NOT NULL,
    data           bytea       NOT NULL,
    metadata       jsonb,
    correlation_id text GENERATED ALWAYS AS (metadata ->> 'correlation_id') STORED,
    category       text GENERATED ALWAYS AS (split_part(stream_id, '-', 1)) STORED,
    recorded_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version)
);
CREATE INDEX IF NOT EXISTS raw_events_type_idx ON {schema}.raw_events (event_type, position);
CREATE INDEX IF NOT EXISTS raw_events_category_idx ON {schema}.raw_events (category, position);
CREATE INDEX IF NOT EXISTS raw_events_correlation_idx ON {schema}.raw_events (correlation_id, position)
    WHERE correlation_id IS NOT NULL;
