-- Creates position-range partitions until `$1` is covered (partitioned layout).
SELECT {schema}.ensure_event_partitions($1)
