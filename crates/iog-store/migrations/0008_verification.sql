-- Result verification. Each job says how it checks results; a task may run
-- as several replicas (extra rows in tasks, index i + r * n_tasks); each
-- replica's commit gets a verdict when its task is settled, and the task's
-- row (replica 0) the output that was accepted, which its job's artifacts
-- are built from. Only 'valid' commits are paid.
ALTER TABLE jobs ADD COLUMN verify TEXT NOT NULL DEFAULT 'none';
ALTER TABLE tasks ADD COLUMN verified_output BLOB;
ALTER TABLE commits ADD COLUMN verdict TEXT CHECK (verdict IN ('valid', 'wrong'));
-- Before verification every commit was accepted (and paid) as it came.
UPDATE commits SET verdict = 'valid';
UPDATE tasks SET verified_output = (
    SELECT c.output_blob FROM commits c WHERE c.job_id = tasks.job_id AND c.task_idx = tasks.task_idx
);
-- A worker's confirmed and wrong results, and its streak of confirmed ones.
ALTER TABLE worker_records ADD COLUMN results_valid INTEGER NOT NULL DEFAULT 0;
ALTER TABLE worker_records ADD COLUMN results_wrong INTEGER NOT NULL DEFAULT 0;
ALTER TABLE worker_records ADD COLUMN valid_streak INTEGER NOT NULL DEFAULT 0;
