-- Migration 2 (plain layout): one events table.
--
-- `position` defaults to a plain sequence only for the test-only naive
-- ordering (docs/adr/0005-postgres-global-order.md); the store itself always
-- supplies positions taken from `global_position` under its row lock.
CREATE SEQUENCE IF NOT EXISTS {schema}.events_position_seq;

CREATE TABLE IF NOT EXISTS {schema}.events (
    position       bigint      PRIMARY KEY DEFAULT nextval('{schema}.events_position_seq'),
    event_id       uuid        NOT NULL UNIQUE,
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    event_type     text        NOT NULL,
    content_type   smallint    NOT NULL,
    data           bytea       NOT NULL,
    metadata       jsonb,
    correlation_id text GENERATED ALWAYS AS (metadata ->> 'correlation_id') STORED,
    category       text GENERATED ALWAYS AS (split_part(stream_id, '-', 1)) STORED,
    recorded_at    timestamptz NOT NULL,
    UNIQUE (stream_id, version)
);

CREATE INDEX IF NOT EXISTS events_type_idx ON {schema}.events (event_type, position);
CREATE INDEX IF NOT EXISTS events_category_idx ON {schema}.events (category, position);
CREATE INDEX IF NOT EXISTS events_correlation_idx ON {schema}.events (correlation_id, position)
    WHERE correlation_id IS NOT NULL;
