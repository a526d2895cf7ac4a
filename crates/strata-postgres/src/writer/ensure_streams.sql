-- Phase 1 of a batch: make sure every stream of the batch has a row, so the
-- next statement can lock it. `$1` is sorted, so concurrent batches create
-- rows in one order and cannot deadlock. A conflicting row being inserted by
-- another transaction makes this wait until that transaction ends.
INSERT INTO {schema}.streams (stream_id)
SELECT unnest($1::text[])
ON CONFLICT (stream_id) DO NOTHING
