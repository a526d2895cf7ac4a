-- The newest snapshot of a stream at or below a version.
SELECT stream_id, version, aggregate_type, schema_version, state, taken_at
FROM {schema}.snapshots
WHERE stream_id = $1 AND version <= $2
ORDER BY version DESC
LIMIT 1
