-- Migration 3's data step: the settings those events hold, one row per
-- stream they govern (see 0003_stream_metadata.sql).
INSERT INTO {schema}.stream_metadata
    (stream_id, metadata_version, max_count, max_age, truncate_before)
SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[])
ON CONFLICT (stream_id) DO NOTHING
