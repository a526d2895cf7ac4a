-- The last committed position: the counter moves only inside committing
-- appends, and every position below it is committed (ADR 0005).
SELECT last_position FROM {schema}.global_position
