-- One stream, downward from version $2, at most $3 events, together with the
-- stream's head in the same snapshot. No row: the stream was never written.
SELECT s.version AS head_version, s.deleted_through, s.tombstoned,
       e.position, e.event_id, e.stream_id, e.version, e.event_type, e.content_type, e.data,
       e.metadata::text, e.recorded_at
FROM {schema}.streams s
LEFT JOIN LATERAL (
    SELECT * FROM {schema}.events ev
    WHERE ev.stream_id = s.stream_id
      AND ev.version <= least($2, s.version)
      AND ev.version > s.deleted_through
    ORDER BY ev.version DESC
    LIMIT $3
) e ON true
WHERE s.stream_id = $1
ORDER BY e.version DESC
