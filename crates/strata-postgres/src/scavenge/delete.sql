-- One scavenge batch, its own short transaction: deletes at most $3 event
-- rows of the streams $1 below their cuts $2 (from plan.sql). Rows another
-- transaction has locked (an erasure, another scavenge) are skipped, so a
-- batch never waits on a row lock and cannot be part of a deadlock; appends
-- insert rows and never lock existing ones. Other events keep their
-- positions; readers see the rows gone from their next statement on.
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
)
SELECT count(*) FROM gone
