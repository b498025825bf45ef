-- Jobs as submitted, and how they ended.
CREATE TABLE jobs (
    job_id        INTEGER PRIMARY KEY,      -- the u64 id, stored bit for bit as i64
    name          TEXT    NOT NULL,
    workload      TEXT    NOT NULL,
    spec_json     BLOB    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('running', 'done', 'failed', 'cancelled')),
    reason        TEXT,
    max_attempts  INTEGER NOT NULL,
    n_tasks       INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    ended_ms      INTEGER
);
CREATE INDEX jobs_by_state ON jobs (state);

-- The latest state of every task, including its current lease.
CREATE TABLE tasks (
    job_id        INTEGER NOT NULL REFERENCES jobs (job_id),
    task_idx      INTEGER NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('queued', 'leased', 'committed', 'failed', 'cancelled')),
    input_blob    BLOB    NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    lease_token   INTEGER,
    lease_worker  TEXT,
    not_before_ms INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    PRIMARY KEY (job_id, task_idx)
) WITHOUT ROWID;

-- One row per committed task. The primary key makes a second commit of the
-- same task impossible, whatever the code above it does.
CREATE TABLE commits (
    job_id        INTEGER NOT NULL,
    task_idx      INTEGER NOT NULL,
    worker_id     TEXT    NOT NULL,
    lease_token   INTEGER NOT NULL,
    output_blob   BLOB    NOT NULL,
    duration_ms   INTEGER NOT NULL,
    committed_ms  INTEGER NOT NULL,
    PRIMARY KEY (job_id, task_idx),
    FOREIGN KEY (job_id, task_idx) REFERENCES tasks (job_id, task_idx)
) WITHOUT ROWID;

-- Final outputs of done jobs, assembled from their tasks' results.
CREATE TABLE artifacts (
    job_id        INTEGER NOT NULL REFERENCES jobs (job_id),
    name          TEXT    NOT NULL,
    media_type    TEXT    NOT NULL,
    blob          BLOB    NOT NULL,
    size_bytes    INTEGER NOT NULL,
    PRIMARY KEY (job_id, name)
) WITHOUT ROWID;

-- Every worker that ever joined, with what it last offered.
CREATE TABLE workers (
    worker_id     TEXT    PRIMARY KEY,
    devices_json  TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms  INTEGER NOT NULL
) WITHOUT ROWID;

-- Small blobs (task inputs and outputs up to INLINE_BLOB_BYTES_MAX) live in
-- the database, so they become durable in the same transaction as the job or
-- commit that refers to them. Larger blobs are files under blobs/.
CREATE TABLE blobs (
    blob_id       BLOB    PRIMARY KEY,
    bytes         BLOB    NOT NULL
);
