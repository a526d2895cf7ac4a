-- Migration 5: tags of dynamic consistency boundaries
-- (docs/adr/0022-dynamic-consistency-boundaries.md, docs/postgres.md
-- "Tags, query reads and conditional appends").
--
-- `events.tags`: the event's tag set, sorted, each once; NULL when it has
-- none (every event written before this migration). Reads return it with
-- the event. On the partitioned layout the column reaches every partition.
ALTER TABLE {schema}.events ADD COLUMN IF NOT EXISTS tags text[];

-- One row per (tag, event): the B-tree a query item with tags starts from
-- (its primary key, `tag` first, then `position` so a range after a
-- position is one index range). Written in the same statement as the
-- events, deleted with them by erasure and scavenging. A plain table on
-- both layouts, like `event_ids`. A query item with types and no tags uses
-- `events_type_idx (event_type, position)` of migration 2.
CREATE TABLE IF NOT EXISTS {schema}.event_tags (
    tag      text   NOT NULL,
    position bigint NOT NULL,
    PRIMARY KEY (tag, position)
);
