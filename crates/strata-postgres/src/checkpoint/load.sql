-- A named consumer's checkpoint.
SELECT position FROM {schema}.checkpoints WHERE name = $1
