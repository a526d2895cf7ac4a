-- One stream, downward from version $2, at most $3 events, together with the
-- stream's head in the same snapshot. No row: the stream was never written.
-- Versions below `deleted_through` and those retention cuts are skipped, as
-- in read_stream_forward.sql.
SELECT r.version AS head_version, r.deleted_through, r.tombstoned,
       e.position, e.event_id, e.stream_id, e.version, e.event_type, e.content_type, e.data,
       e.metadata::text, e.recorded_at, e.tags
FROM {schema}.stream_retention r
LEFT JOIN LATERAL (
    SELECT * FROM {schema}.events ev
    WHERE ev.stream_id = r.stream_id
      AND ev.version <= least($2, r.version)
      AND ev.version >= greatest(r.deleted_through + 1, r.kept_from)
      AND ev.recorded_at >= coalesce(r.kept_since, '-infinity')
    ORDER BY ev.version DESC
    LIMIT $3
) e ON true
WHERE r.stream_id = $1
ORDER BY e.version DESC
