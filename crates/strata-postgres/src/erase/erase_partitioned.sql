-- erase_stream (partitioned layout): as erase.sql, and the erased events'
-- ids leave `event_ids` with them.
--
-- $1 the stream and its metadata stream (or the stream alone)
-- $2 the stream
WITH st AS (
    UPDATE {schema}.streams SET tombstoned = true WHERE stream_id = ANY($1)
), ev AS (
    DELETE FROM {schema}.events WHERE stream_id = ANY($1) RETURNING event_id, position, tags
), tg AS (
    -- Their tag rows go with them (primary-key probes).
    DELETE FROM {schema}.event_tags t
    USING (SELECT ev.position, unnest(ev.tags) AS tag FROM ev) d
    WHERE t.tag = d.tag AND t.position = d.position
), ids AS (
    DELETE FROM {schema}.event_ids WHERE event_id IN (SELECT event_id FROM ev)
), md AS (
    DELETE FROM {schema}.stream_metadata WHERE stream_id = $2
), sn AS (
    DELETE FROM {schema}.snapshots WHERE stream_id = $2
)
SELECT count(*) FROM ev
