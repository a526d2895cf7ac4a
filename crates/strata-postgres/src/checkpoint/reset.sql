-- Forgets a named consumer's checkpoint.
DELETE FROM {schema}.checkpoints WHERE name = $1
