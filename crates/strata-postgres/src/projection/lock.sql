-- Inside a projection's transaction: lock its checkpoint row, read it.
SELECT position FROM {schema}.checkpoints WHERE name = $1 FOR UPDATE
