-- TEST-ONLY naive ordering: the highest committed position, which is NOT a
-- safe head (lower positions may still commit). See append_naive.sql.
SELECT coalesce(max(position), 0) FROM {schema}.events
