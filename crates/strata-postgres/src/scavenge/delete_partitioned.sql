-- One scavenge batch (partitioned layout): as delete.sql, and the removed
-- events' ids leave `event_ids` with them.
WITH doomed AS (
    SELECT d.position
    FROM unnest($1::text[], $2::bigint[]) AS c(stream_id, cut)
    CROSS JOIN LATERAL (
        SELECT ev.position FROM {schema}.events ev
        WHERE ev.stream_id = c.stream_id AND ev.version < c.cut
        ORDER BY ev.version
        LIMIT $3
        FOR UPDATE SKIP LOCKED
    ) d
    LIMIT $3
), gone AS (
    DELETE FROM {schema}.events WHERE position IN (SELECT position FROM doomed)
    RETURNING event_id, position, tags
), tg AS (
    -- Their tag rows go with them (primary-key probes).
    DELETE FROM {schema}.event_tags t
    USING (SELECT gone.position, unnest(gone.tags) AS tag FROM gone) d
    WHERE t.tag = d.tag AND t.position = d.position
), ids AS (
    DELETE FROM {schema}.event_ids WHERE event_id IN (SELECT event_id FROM gone)
)
SELECT count(*) FROM gone
