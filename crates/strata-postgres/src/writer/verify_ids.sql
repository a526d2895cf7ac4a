-- The one-round-trip path of a batch, after verify_heads.sql (a statement of
-- its own, so its snapshot sees what committed while the locks were
-- awaited): fail, aborting the transaction, when one of the batch's ids
-- ($1) is already recorded — the batch was decided as holding no retry.
SELECT CASE
    WHEN found > 0 THEN ('strata: event ids recorded: ' || found)::bigint
    ELSE 0::bigint
END
FROM (
    SELECT count(*) AS found
    FROM unnest($1::uuid[]) AS i(event_id)
    WHERE EXISTS (SELECT 1 FROM {schema}.{ids_table} WHERE event_id = i.event_id)
) f
