-- A stream's head, for stream_info, and the first version it has readable:
-- the first one deletion and retention leave (stream_retention, in this
-- statement's snapshot); with `max_age`, the first of those recorded since
-- `kept_since` (events are recorded in version order), or past the head
-- when all of them are too old.
SELECT r.version, r.deleted_through, r.tombstoned, r.last_position,
       CASE WHEN r.kept_since IS NULL THEN f.first
            ELSE coalesce(
                (SELECT ev.version FROM {schema}.events ev
                 WHERE ev.stream_id = r.stream_id
                   AND ev.version >= f.first AND ev.version <= r.version
                   AND ev.recorded_at >= r.kept_since
                 ORDER BY ev.version
                 LIMIT 1),
                greatest(f.first, r.version + 1))
       END AS first_readable
FROM {schema}.stream_retention r
CROSS JOIN LATERAL (SELECT greatest(r.deleted_through + 1, r.kept_from) AS first) f
WHERE r.stream_id = $1
