-- A job may bound how long one lease of its tasks lasts (NULL: no bound),
-- so a worker cannot hold a task forever by listing it in its heartbeats.
ALTER TABLE jobs ADD COLUMN task_timeout_ms INTEGER;
