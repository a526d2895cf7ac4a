-- A conditional append's first step of phase 2: take the global position
-- lock (the row lock every append's phase 2 takes, held to commit) before
-- the condition is checked, so the check's snapshot, taken by the next
-- statement, holds every append committed before and none can commit
-- between the check and this transaction's commit (docs/postgres.md).
SELECT FROM {schema}.global_position FOR UPDATE
