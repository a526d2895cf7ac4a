-- Detaches one partition: its events leave $all and stay in the detached
-- table (under the same name) for archiving or dropping.
ALTER TABLE {schema}.events DETACH PARTITION {schema}.{partition}
