-- Stores a snapshot, replacing one at the same stream and version.
INSERT INTO {schema}.snapshots (stream_id, version, aggregate_type, schema_version, state, taken_at)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (stream_id, version) DO UPDATE
SET aggregate_type = EXCLUDED.aggregate_type,
    schema_version = EXCLUDED.schema_version,
    state = EXCLUDED.state,
    taken_at = EXCLUDED.taken_at
