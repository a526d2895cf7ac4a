-- One stream, upward from version $2, at most $3 events, together with the
-- stream's head in the same snapshot. No row: the stream was never written.
-- Versions below `deleted_through` and those retention cuts are skipped:
-- `stream_retention` joins the stream's settings in this statement's
-- snapshot (migrate/0003_stream_metadata.sql).
SELECT r.version AS head_version, r.deleted_through, r.tombstoned,
       e.position, e.event_id, e.stream_id, e.version, e.event_type, e.content_type, e.data,
       e.metadata::text, e.recorded_at, e.tags
FROM {schema}.stream_retention r
LEFT JOIN LATERAL (
    SELECT * FROM {schema}.events ev
    WHERE ev.stream_id = r.stream_id
      AND ev.version >= greatest($2, r.deleted_through + 1, r.kept_from)
      AND ev.version <= r.version
      AND ev.recorded_at >= coalesce(r.kept_since, '-infinity')
    ORDER BY ev.version
    LIMIT $3
) e ON true
WHERE r.stream_id = $1
ORDER BY e.version
