-- The streams a scavenge looks at: deleted, tombstoned, or governed by
-- retention settings (metadata streams included). For its progress only.
SELECT count(*) FROM {schema}.stream_retention r
WHERE r.tombstoned OR r.deleted_through > 0 OR r.governed
