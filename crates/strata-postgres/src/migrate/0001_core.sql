-- Migration 1: everything but the events table.
-- `{schema}` is replaced by the quoted schema name before this runs.

-- Store-wide settings fixed when the schema is created (events layout,
-- partition size, how far partitions have been created).
CREATE TABLE IF NOT EXISTS {schema}.settings (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- One row per stream: the append guard is checked against this row, locked
-- FOR UPDATE, instead of scanning events. A row with version 0 that is not
-- tombstoned was locked by an append that failed: the stream was never written.
CREATE TABLE IF NOT EXISTS {schema}.streams (
    stream_id       text PRIMARY KEY,
    version         bigint  NOT NULL DEFAULT 0,
    deleted_through bigint  NOT NULL DEFAULT 0,
    tombstoned      boolean NOT NULL DEFAULT false,
    last_position   bigint
);

-- The global position counter. Appends update this single row as their last
-- step, so its row lock is held from position assignment to commit: commits
-- happen in position order and no reader can see a position before a lower
-- one (docs/adr/0005-postgres-global-order.md).
CREATE TABLE IF NOT EXISTS {schema}.global_position (
    id               boolean PRIMARY KEY DEFAULT true CHECK (id),
    last_position    bigint      NOT NULL,
    last_recorded_at timestamptz NOT NULL
);
INSERT INTO {schema}.global_position (id, last_position, last_recorded_at)
VALUES (true, 0, '-infinity')
ON CONFLICT (id) DO NOTHING;

CREATE TABLE IF NOT EXISTS {schema}.snapshots (
    stream_id      text        NOT NULL,
    version        bigint      NOT NULL,
    aggregate_type text        NOT NULL,
    schema_version integer     NOT NULL,
    state          bytea       NOT NULL,
    taken_at       timestamptz NOT NULL,
    PRIMARY KEY (stream_id, version)
);

CREATE TABLE IF NOT EXISTS {schema}.checkpoints (
    name       text PRIMARY KEY,
    position   bigint      NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
