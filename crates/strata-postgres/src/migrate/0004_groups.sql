-- Migration 4: consumer groups shared by processes (group.rs,
-- docs/postgres.md "Consumer groups").
--
-- `groups`: one row per group; `checkpoint` only rises. `frontier` is the last position of `$all`
-- the group has claimed: every event of the source at or below it has a
-- row in `group_leases` until it is settled. Only a claimer holding the
-- row's lock in `group_frontiers` moves it.
CREATE TABLE IF NOT EXISTS {schema}.groups (
    name        text        PRIMARY KEY,
    settings    jsonb       NOT NULL,
    checkpoint  bigint      NOT NULL,
    acked_total bigint      NOT NULL DEFAULT 0,
    -- Acks in the second `rate_second` (unix seconds) and the one before,
    -- for the status's acked events per second.
    rate_second bigint      NOT NULL DEFAULT 0,
    rate_count  bigint      NOT NULL DEFAULT 0,
    prev_count  bigint      NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The claim cursor, apart from `groups` so claimers (which lock it with
-- SKIP LOCKED) never block acks, which update `groups.checkpoint`.
CREATE TABLE IF NOT EXISTS {schema}.group_frontiers (
    group_name text   PRIMARY KEY REFERENCES {schema}.groups (name) ON DELETE CASCADE,
    frontier   bigint NOT NULL
);

-- One row per claimed, unsettled event: free (`consumer` NULL, offered from
-- `not_before`) or leased (`consumer`, `delivery_id`, until `lease_expires`).
CREATE TABLE IF NOT EXISTS {schema}.group_leases (
    group_name     text        NOT NULL REFERENCES {schema}.groups (name) ON DELETE CASCADE,
    position       bigint      NOT NULL,
    stream_id      text        NOT NULL,
    consumer       text,
    lease_expires  timestamptz,
    delivery_count integer     NOT NULL DEFAULT 0,
    delivery_id    bigint,
    not_before     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_name, position)
);
CREATE INDEX IF NOT EXISTS group_leases_stream_idx
    ON {schema}.group_leases (group_name, stream_id, position);
CREATE INDEX IF NOT EXISTS group_leases_delivery_idx
    ON {schema}.group_leases (group_name, delivery_id);

CREATE SEQUENCE IF NOT EXISTS {schema}.group_delivery_seq;

CREATE TABLE IF NOT EXISTS {schema}.group_parked (
    group_name     text        NOT NULL REFERENCES {schema}.groups (name) ON DELETE CASCADE,
    position       bigint      NOT NULL,
    reason         text        NOT NULL,
    delivery_count integer     NOT NULL,
    parked_at      timestamptz NOT NULL DEFAULT now(),
    replaying      boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (group_name, position)
);

CREATE TABLE IF NOT EXISTS {schema}.group_consumers (
    group_name text        NOT NULL REFERENCES {schema}.groups (name) ON DELETE CASCADE,
    consumer   text        NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (group_name, consumer)
);
