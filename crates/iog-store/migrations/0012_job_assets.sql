-- Blobs a job's tasks read besides their own inputs: a wasm job's module
-- and data files, stored once however many tasks read them. A worker may
-- read them while it holds a lease on one of the job's tasks; the job's
-- submitter always may.
CREATE TABLE job_assets (
    job_id  INTEGER NOT NULL REFERENCES jobs (job_id),
    blob    BLOB NOT NULL,
    PRIMARY KEY (job_id, blob)
) WITHOUT ROWID;
CREATE INDEX job_assets_by_blob ON job_assets (blob);
-- Whether a worker holds a lease on any task of a job, without scanning
-- the job's tasks.
CREATE INDEX tasks_by_lease_worker ON tasks (lease_worker, job_id) WHERE state = 'leased';
