-- Inside a projection's transaction: create its checkpoint row if needed, so
-- the next statement can lock it.
INSERT INTO {schema}.checkpoints (name, position) VALUES ($1, 0)
ON CONFLICT (name) DO NOTHING
