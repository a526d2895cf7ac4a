-- list_streams: one page of stream heads, in byte order of their names
-- (COLLATE "C", served by the index of migration 6), each with the first
-- version it has readable, computed as stream_head.sql computes it.
-- Rows of version 0 that are not tombstoned were only locked by an append
-- that failed: those streams were never written and are not listed.
--
-- $1 names strictly above this (the page's `after`, or '')
-- $2 names at or above this (the prefix, or '')
-- $3 names strictly below this (the end of the prefix's range, or a
--    string above every name)
-- $4 the category, or NULL: the name is it, or starts with it and `-`
-- $5 whether system streams (names starting with `$`) are listed
-- $6 how many rows to return (one past the page, to tell whether more follow)
WITH page AS (
    SELECT s.stream_id
    FROM {schema}.streams s
    WHERE s.stream_id COLLATE "C" > $1
      AND s.stream_id COLLATE "C" >= $2
      AND s.stream_id COLLATE "C" < $3
      AND (s.version > 0 OR s.tombstoned)
      AND ($4::text IS NULL OR s.stream_id = $4 OR starts_with(s.stream_id, $4 || '-'))
      AND ($5 OR NOT starts_with(s.stream_id, '$'))
    ORDER BY s.stream_id COLLATE "C"
    LIMIT $6
)
SELECT r.stream_id, r.version, r.deleted_through, r.tombstoned, r.last_position,
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
FROM page
JOIN {schema}.stream_retention r ON r.stream_id = page.stream_id
CROSS JOIN LATERAL (SELECT greatest(r.deleted_through + 1, r.kept_from) AS first) f
ORDER BY r.stream_id COLLATE "C"
