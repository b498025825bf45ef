-- A chained job's tasks run one after another, each made from the accepted
-- result of the one before: only the tasks made so far have rows, and
-- n_tasks counts all of them. Jobs stored before chains existed are not
-- chained.
ALTER TABLE jobs ADD COLUMN chained INTEGER NOT NULL DEFAULT 0;
