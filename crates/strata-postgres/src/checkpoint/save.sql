-- Records a named consumer's checkpoint.
INSERT INTO {schema}.checkpoints (name, position, updated_at) VALUES ($1, $2, now())
ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position, updated_at = EXCLUDED.updated_at
