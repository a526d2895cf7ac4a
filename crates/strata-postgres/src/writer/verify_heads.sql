-- The one-round-trip path of a batch (writer.rs, "known heads"): lock the
-- batch's stream rows in sorted order, as lock_streams.sql does, and fail
-- unless every locked head is the one the batch was decided against
-- ($2..$5, one element per stream of $1). The failure (a text that is not a
-- number, cast to one) aborts the transaction, so the append sent after it
-- in the same round trip does nothing and the pipelined COMMIT rolls back.
WITH locked AS (
    SELECT (s.version, s.deleted_through, s.tombstoned, s.last_position)
           IS NOT DISTINCT FROM (i.version, i.deleted_through, i.tombstoned, i.last_position) AS same
    FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bool[], $5::bigint[])
             WITH ORDINALITY AS i(stream_id, version, deleted_through, tombstoned, last_position, ord)
    CROSS JOIN LATERAL (
        SELECT version, deleted_through, tombstoned, last_position
        FROM {schema}.streams
        WHERE stream_id = i.stream_id
        FOR UPDATE
    ) s
    ORDER BY i.ord
), changed AS (
    SELECT count(*) FILTER (WHERE NOT same) AS n, count(*) AS locked FROM locked
)
SELECT CASE
    WHEN n > 0 OR locked <> cardinality($1::text[])
        THEN ('strata: stream heads changed: ' || n)::bigint
    ELSE 0::bigint
END
FROM changed
