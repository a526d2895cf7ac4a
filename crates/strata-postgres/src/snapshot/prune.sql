-- Keeps only the newest $2 snapshots of a stream.
DELETE FROM {schema}.snapshots
WHERE stream_id = $1
  AND version < (
      SELECT version FROM {schema}.snapshots
      WHERE stream_id = $1
      ORDER BY version DESC
      OFFSET $2::bigint - 1 LIMIT 1
  )
