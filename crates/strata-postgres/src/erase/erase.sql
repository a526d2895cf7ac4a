-- erase_stream, once the stream's row and its metadata stream's were
-- locked (writer/lock_streams.sql) and the guard checked: tombstone both,
-- and delete their events, the stream's retention settings and its
-- snapshots, in this one transaction. Positions of other events do not
-- move; readers see the rows gone from their next statement on.
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
), md AS (
    DELETE FROM {schema}.stream_metadata WHERE stream_id = $2
), sn AS (
    DELETE FROM {schema}.snapshots WHERE stream_id = $2
)
SELECT count(*) FROM ev
