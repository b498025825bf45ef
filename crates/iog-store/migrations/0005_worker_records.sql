-- What the coordinator knows of each worker's conduct: hardware challenge
-- rounds and task outcomes, which its trust and reputation come from. Kept
-- so that a restart neither clears a run of failed challenges (which
-- slashes at three) nor a worker's good record.
CREATE TABLE worker_records (
    worker_id TEXT PRIMARY KEY,
    challenges_passed INTEGER NOT NULL,
    challenges_failed INTEGER NOT NULL,
    challenges_failed_in_row INTEGER NOT NULL,
    tasks_committed INTEGER NOT NULL,
    tasks_failed INTEGER NOT NULL,
    leases_lapsed INTEGER NOT NULL
);
