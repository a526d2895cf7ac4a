-- A scavenge's plan, a page at a time: the streams after $1 (by name, at
-- most $2) that deletion or retention may cut, each with its cut — the
-- first version a read can still return — and whether any row below it
-- is left. The cut is the rule reads apply (read/stream_head.sql): every
-- version of a tombstoned stream; else those below `deleted_through + 1`
-- and the retention view's `kept_from`, and with `max_age` the ones
-- recorded before `kept_since` (a prefix: events are recorded in version
-- order), all of them when every one is that old.
SELECT r.stream_id, c.cut,
       EXISTS (SELECT FROM {schema}.events ev
               WHERE ev.stream_id = r.stream_id AND ev.version < c.cut) AS has_rows
FROM {schema}.stream_retention r
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.tombstoned THEN r.version + 1
                ELSE greatest(r.deleted_through + 1, r.kept_from) END AS first
) f
CROSS JOIN LATERAL (
    SELECT CASE WHEN r.tombstoned OR r.kept_since IS NULL THEN f.first
                ELSE coalesce(
                    (SELECT ev.version FROM {schema}.events ev
                     WHERE ev.stream_id = r.stream_id
                       AND ev.version >= f.first AND ev.version <= r.version
                       AND ev.recorded_at >= r.kept_since
                     ORDER BY ev.version
                     LIMIT 1),
                    greatest(f.first, r.version + 1))
           END AS cut
) c
WHERE r.stream_id > $1 AND (r.tombstoned OR r.deleted_through > 0 OR r.governed)
ORDER BY r.stream_id
LIMIT $2
