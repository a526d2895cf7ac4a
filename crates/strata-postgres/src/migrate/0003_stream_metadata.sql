-- Migration 3: stream metadata and retention (strata_core::metadata).
--
-- Metadata is kept as `$metadata` events in the system stream `$$NAME`, like
-- any event. This table holds the retention settings of the latest one,
-- written by the writer in the same statement that appends to `$$NAME`
-- (writer/append.sql), so a read that joins it in one statement sees the
-- settings and the events of one snapshot. A row exists for every NAME whose
-- metadata stream was ever written, retention or not; its stream need not
-- exist. Settings absent from the metadata are NULL.
CREATE TABLE IF NOT EXISTS {schema}.stream_metadata (
    stream_id        text   PRIMARY KEY,
    metadata_version bigint NOT NULL,
    max_count        bigint,
    max_age          bigint,
    truncate_before  bigint
);

-- What retention leaves readable of each stream, by the rule of
-- strata_core::Retention (deletion left out: `$all` keeps the events of
-- deleted streams, and stream reads add `deleted_through` themselves):
-- - `kept_from`: the first version `truncate_before` and `max_count`
--   (counted back from the head) leave; a metadata stream `$$NAME` without
--   a `max_count` of its own keeps its latest event only;
-- - `kept_since`: events recorded before it are cut by `max_age` (NULL:
--   no `max_age`);
-- - `governed`: whether anything can be cut at all (settings, or a
--   metadata stream).
-- `now()` is the start of the reading statement's transaction.
CREATE OR REPLACE VIEW {schema}.stream_retention AS
SELECT s.stream_id, s.version, s.deleted_through, s.tombstoned, s.last_position,
       greatest(
           m.truncate_before,
           s.version + 1 - coalesce(m.max_count, meta.implicit_max_count),
           1
       ) AS kept_from,
       now() - make_interval(secs => m.max_age) AS kept_since,
       (m.stream_id IS NOT NULL OR meta.implicit_max_count IS NOT NULL) AS governed
FROM {schema}.streams s
LEFT JOIN {schema}.stream_metadata m ON m.stream_id = s.stream_id
CROSS JOIN LATERAL (
    SELECT CASE WHEN starts_with(s.stream_id, '$$') AND length(s.stream_id) > 2
                THEN 1::bigint END AS implicit_max_count
) meta;
