-- Whole hours each worker was online, counted toward its reputation.
ALTER TABLE worker_records ADD COLUMN online_hours INTEGER NOT NULL DEFAULT 0;
