-- Phase 1 of a batch holding conditional appends, after the stream rows are
-- locked: take the global position lock (the row lock every append's phase
-- 2 takes, held to commit) before the conditions are checked, so the
-- checks' snapshots, taken by the statements after this one, hold every
-- append committed before and none can commit between the checks and this
-- transaction's commit (docs/postgres.md). Returns the last position taken:
-- the batch's events take the positions after it.
SELECT last_position FROM {schema}.global_position FOR UPDATE
