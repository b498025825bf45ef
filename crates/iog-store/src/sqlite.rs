use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use iog_core::{Change, RestoredJob, RestoredTask, Snapshot};
use iog_ledger::Amount;
use iog_types::{BlobId, JobId, JobState, LeaseToken, TaskId, TaskState, UnixMs, WorkerId};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{QueryBuilder, Row, Sqlite, SqlitePool};

use crate::records::{
    ArtifactRecord, CommitRecord, JobProgress, JobRecord, SignedCheckpoint, TaskRecord, WorkerRecord,
};
use crate::{BlobStore, StoreError};

/// Connections to the SQLite file. Writes are serialised by the coordinator's
/// single state-machine task; the others read.
const POOL_CONNECTIONS_MAX: u32 = 8;
/// How long a statement waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Blobs up to this size are kept in the database rather than as files:
/// 64 KiB. Task inputs and outputs of most tasks are this small, and keeping
/// them in SQLite saves a file, two fsyncs and a round trip each.
pub const INLINE_BLOB_BYTES_MAX: usize = 64 * 1024;

/// Rows in one multi-row INSERT; 4 parameters each stays far below SQLite's
/// limit of 32 766 bound parameters.
const ROWS_PER_INSERT: usize = 1_000;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The coordinator's store: a SQLite database plus a blob directory in one data dir.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    blobs: BlobStore,
}

fn to_i64(value: u64) -> i64 {
    value as i64
}

fn to_u64(value: i64) -> u64 {
    value as u64
}

fn blob_id(bytes: Vec<u8>) -> Result<BlobId, StoreError> {
    let array: [u8; 32] = bytes
        .try_into()
        .map_err(|bytes: Vec<u8>| StoreError::Corrupt(format!("a blob id has {} bytes, not 32", bytes.len())))?;
    Ok(BlobId(array))
}

fn job_state(text: &str) -> Result<JobState, StoreError> {
    JobState::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown job state {text:?}")))
}

fn task_state(text: &str) -> Result<TaskState, StoreError> {
    TaskState::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown task state {text:?}")))
}

impl Store {
    /// Opens the store in `data_dir` (creating the directory, the database
    /// `coordinator.db` and the `blobs/` folder if needed) and brings its
    /// schema up to date.
    pub async fn open(data_dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Blob { path: data_dir.to_owned(), source })?;
        let path = data_dir.join("coordinator.db");
        let options = SqliteConnectOptions::from_str("sqlite://")
            .map_err(|source| StoreError::Open { path: path.clone(), source })?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(POOL_CONNECTIONS_MAX)
            .connect_with(options)
            .await
            .map_err(|source| StoreError::Open { path: path.clone(), source })?;
        MIGRATOR.run(&pool).await?;
        let blobs = BlobStore::open(&data_dir.join("blobs"))?;
        Ok(Store { pool, blobs })
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Writes `changes` in one transaction: all of them or none.
    pub async fn apply(&self, changes: &[Change]) -> Result<(), StoreError> {
        self.apply_with_blobs(changes, &[]).await
    }

    /// Writes small `blobs` and `changes` in one transaction, so a change
    /// never refers to a blob that a crash lost. Every blob must be at most
    /// [`INLINE_BLOB_BYTES_MAX`] bytes and match its id.
    pub async fn apply_with_blobs(&self, changes: &[Change], blobs: &[(BlobId, Arc<[u8]>)]) -> Result<(), StoreError> {
        self.apply_batch(changes, blobs, &[], None).await
    }

    /// Writes one batch in one transaction: small blobs, core changes,
    /// ledger journal entries (`(seq, encoded entry)`, appended in order)
    /// and a signed checkpoint of the journal.
    pub async fn apply_batch(
        &self,
        changes: &[Change],
        blobs: &[(BlobId, Arc<[u8]>)],
        journal: &[(u64, Vec<u8>)],
        checkpoint: Option<&SignedCheckpoint>,
    ) -> Result<(), StoreError> {
        if changes.is_empty() && blobs.is_empty() && journal.is_empty() && checkpoint.is_none() {
            return Ok(());
        }
        if let Some((_, bytes)) = blobs.iter().find(|(_, bytes)| bytes.len() > INLINE_BLOB_BYTES_MAX) {
            return Err(StoreError::BlobTooLarge {
                size_bytes: bytes.len() as u64,
                limit_bytes: INLINE_BLOB_BYTES_MAX as u64,
            });
        }
        // The whole batch goes to SQLite as one script of statements with
        // their parameters bound in order: one round trip to the database
        // thread instead of one per statement, which is what bounds the
        // coordinator's task throughput.
        let mut script = QueryBuilder::new("");
        for chunk in blobs.chunks(ROWS_PER_INSERT) {
            script.push("INSERT OR IGNORE INTO blobs (blob_id, bytes) ");
            script.push_values(chunk, |mut row, (blob_id, bytes)| {
                row.push_bind(blob_id.0.as_slice()).push_bind(&bytes[..]);
            });
            script.push(";\n");
        }
        // A worker's record may change many times in one batch (once per
        // commit); only its last state needs writing.
        let mut last_record: HashMap<&WorkerId, usize> = HashMap::new();
        for (idx, change) in changes.iter().enumerate() {
            if let Change::WorkerRecorded { worker_id, .. } = change {
                last_record.insert(worker_id, idx);
            }
        }
        for (idx, change) in changes.iter().enumerate() {
            if let Change::WorkerRecorded { worker_id, .. } = change
                && last_record.get(worker_id) != Some(&idx)
            {
                continue;
            }
            push_change(&mut script, change);
        }
        for chunk in journal.chunks(ROWS_PER_INSERT) {
            script.push("INSERT INTO ledger_journal (seq, entry) ");
            script.push_values(chunk, |mut row, (seq, entry)| {
                row.push_bind(to_i64(*seq)).push_bind(&entry[..]);
            });
            script.push(";\n");
        }
        if let Some(checkpoint) = checkpoint {
            script.push("INSERT INTO ledger_checkpoints (n_entries, head_hash, signer, signature, signed_ms) VALUES (");
            script.push_bind(to_i64(checkpoint.n_entries)).push(", ").push_bind(&checkpoint.head_hash[..]);
            script.push(", ").push_bind(&checkpoint.signer[..]).push(", ").push_bind(&checkpoint.signature[..]);
            script.push(", ").push_bind(to_i64(checkpoint.signed_ms)).push(");\n");
        }
        let mut tx = self.pool.begin().await?;
        script.build().persistent(false).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every signed checkpoint of the ledger journal, oldest first.
    pub async fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, StoreError> {
        let rows = sqlx::query("SELECT * FROM ledger_checkpoints ORDER BY n_entries").fetch_all(&self.pool).await?;
        let mut checkpoints = Vec::with_capacity(rows.len());
        for row in rows {
            checkpoints.push(SignedCheckpoint {
                n_entries: to_u64(row.try_get("n_entries")?),
                head_hash: row.try_get("head_hash")?,
                signer: row.try_get("signer")?,
                signature: row.try_get("signature")?,
                signed_ms: to_u64(row.try_get("signed_ms")?),
            });
        }
        Ok(checkpoints)
    }

    /// Stores a blob (in the database when small, as a file otherwise) and
    /// returns its id. Storing the same bytes again is a no-op.
    pub async fn put_blob(&self, bytes: Vec<u8>) -> Result<BlobId, StoreError> {
        let blob_id = BlobId::of(&bytes);
        self.put_blob_verified(blob_id, bytes).await?;
        Ok(blob_id)
    }

    /// Stores `bytes` under `expected`, refusing them if they hash to something else.
    pub async fn put_blob_verified(&self, expected: BlobId, bytes: Vec<u8>) -> Result<(), StoreError> {
        if bytes.len() <= INLINE_BLOB_BYTES_MAX {
            if BlobId::of(&bytes) != expected {
                return Err(StoreError::BlobMismatch { expected });
            }
            let mut tx = self.pool.begin().await?;
            insert_blob(&mut tx, expected, &bytes).await?;
            tx.commit().await?;
            return Ok(());
        }
        let files = self.blobs.clone();
        tokio::task::spawn_blocking(move || files.put_verified(expected, &bytes))
            .await
            .map_err(|err| StoreError::Corrupt(format!("blob writer panicked: {err}")))?
    }

    /// Reads a blob wherever it is kept; `None` when the store does not have it.
    pub async fn get_blob(&self, blob_id: BlobId) -> Result<Option<Vec<u8>>, StoreError> {
        let row: Option<Vec<u8>> = sqlx::query_scalar("SELECT bytes FROM blobs WHERE blob_id = ?")
            .bind(blob_id.0.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        if row.is_some() {
            return Ok(row);
        }
        let files = self.blobs.clone();
        tokio::task::spawn_blocking(move || files.get(&blob_id))
            .await
            .map_err(|err| StoreError::Corrupt(format!("blob reader panicked: {err}")))?
    }

    /// A blob's size in bytes, without reading it; `None` when the store
    /// does not have it.
    pub async fn blob_len(&self, blob_id: BlobId) -> Result<Option<u64>, StoreError> {
        let row: Option<i64> = sqlx::query_scalar("SELECT length(bytes) FROM blobs WHERE blob_id = ?")
            .bind(blob_id.0.as_slice())
            .fetch_optional(&self.pool)
            .await?;
        if let Some(len) = row {
            return Ok(Some(len as u64));
        }
        let path = self.blobs.path(&blob_id);
        match std::fs::metadata(&path) {
            Ok(meta) => Ok(Some(meta.len())),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Blob { path, source }),
        }
    }

    /// Whether the store has a blob.
    pub async fn has_blob(&self, blob_id: BlobId) -> Result<bool, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM blobs WHERE blob_id = ?")
            .bind(blob_id.0.as_slice())
            .fetch_one(&self.pool)
            .await?;
        Ok(n > 0 || self.blobs.contains(&blob_id))
    }

    /// Records a worker's changed offer.
    pub async fn record_offer(&self, worker_id: &WorkerId, offer_json: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE workers SET offer_json = ? WHERE worker_id = ?")
            .bind(offer_json)
            .bind(&worker_id.0)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// What the core needs to resume: every running job and its tasks.
    pub async fn load_snapshot(&self) -> Result<Snapshot, StoreError> {
        let job_rows = sqlx::query(
            "SELECT job_id, state, max_attempts, created_ms, requirements_json, submitter, task_timeout_ms, n_tasks, \
                    verify, chained FROM jobs WHERE state = 'running'",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut snapshot = Snapshot::default();
        for row in job_rows {
            let job_id = JobId(to_u64(row.try_get("job_id")?));
            let requirements_json: String = row.try_get("requirements_json")?;
            // Jobs stored before placement had requirements took any device.
            let requirements = if requirements_json.is_empty() {
                iog_sched::Requirements::default()
            } else {
                serde_json::from_str(&requirements_json)
                    .map_err(|err| StoreError::Corrupt(format!("job {job_id}'s requirements: {err}")))?
            };
            snapshot.jobs.push(RestoredJob {
                // The column holds a chained job's link width (1 for jobs
                // stored when every link was one task), 0 for others.
                chain_width: row.try_get::<i64, _>("chained")? as u32,
                job_id,
                state: job_state(row.try_get("state")?)?,
                max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
                created_ms: to_u64(row.try_get("created_ms")?),
                requirements,
                submitter: row.try_get("submitter")?,
                task_timeout_ms: row.try_get::<Option<i64>, _>("task_timeout_ms")?.map(to_u64),
                n_tasks: row.try_get::<i64, _>("n_tasks")? as u32,
                verify: verify_policy(&job_id, row.try_get("verify")?)?,
            });
        }
        let task_rows = sqlx::query(
            "SELECT t.job_id, t.task_idx, t.state, t.input_blob, t.attempts, t.lease_token, t.lease_worker, \
                    t.not_before_ms, t.last_error, t.lease_price, t.verified_output, c.worker_id, \
                    c.lease_token AS c_token, c.output_blob, c.duration_ms, c.committed_ms, c.price, c.verdict, \
                    c.device, c.model \
             FROM tasks t JOIN jobs j ON j.job_id = t.job_id \
             LEFT JOIN commits c ON c.job_id = t.job_id AND c.task_idx = t.task_idx \
             WHERE j.state = 'running'",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in task_rows {
            let task = task_record(&row)?;
            let lease_price = Amount::from_base_units(to_u64(row.try_get("lease_price")?));
            snapshot.tasks.push(RestoredTask {
                price_io_per_hour: lease_price,
                task_id: task.task_id,
                state: task.state,
                input: task.input,
                attempts: task.attempts,
                token: task.token,
                holder: task.holder,
                not_before_ms: task.not_before_ms,
                output: task.commit.as_ref().map(|commit| commit.output),
                committed_by: task.commit.as_ref().map(|commit| commit.worker_id.clone()),
                duration_ms: task.commit.as_ref().map_or(0, |commit| commit.duration_ms),
                accepted: task.verified_output,
                verdict: task.commit.as_ref().and_then(|commit| commit.verdict),
                model: row.try_get("model")?,
            });
        }
        let worker_rows = sqlx::query(
            "SELECT worker_id, challenges_passed, challenges_failed, challenges_failed_in_row, tasks_committed, \
                    tasks_failed, leases_lapsed, online_hours, results_valid, results_wrong, valid_streak \
             FROM worker_records ORDER BY worker_id",
        )
        .fetch_all(&self.pool)
        .await?;
        for row in worker_rows {
            let count = |column: &str| row.try_get::<i64, _>(column).map(to_u64);
            let small =
                |column: &str| count(column).map(|n| u32::try_from(n).unwrap_or(u32::MAX)).map_err(StoreError::from);
            let challenges = iog_core::ChallengeRecord {
                passed: small("challenges_passed")?,
                failed: small("challenges_failed")?,
                failed_in_row: small("challenges_failed_in_row")?,
            };
            let reputation = iog_core::Reputation {
                tasks_committed: count("tasks_committed")?,
                tasks_failed: count("tasks_failed")?,
                leases_lapsed: count("leases_lapsed")?,
                online_hours: count("online_hours")?,
                results_valid: count("results_valid")?,
                results_wrong: count("results_wrong")?,
                valid_streak: count("valid_streak")?,
                challenges_passed: u64::from(challenges.passed),
                challenges_failed: u64::from(challenges.failed),
            };
            let worker_id = iog_types::WorkerId(row.try_get("worker_id")?);
            snapshot.workers.push((worker_id, iog_core::WorkerRecord { challenges, reputation }));
        }
        Ok(snapshot)
    }

    /// The spec (as JSON) of every running job: the coordinator reads the
    /// payment terms of paid jobs from it after a restart.
    pub async fn running_job_specs(&self) -> Result<Vec<(JobId, Vec<u8>)>, StoreError> {
        let rows =
            sqlx::query("SELECT job_id, spec_json FROM jobs WHERE state = 'running'").fetch_all(&self.pool).await?;
        let mut specs = Vec::with_capacity(rows.len());
        for row in rows {
            specs.push((JobId(to_u64(row.try_get("job_id")?)), row.try_get("spec_json")?));
        }
        Ok(specs)
    }

    /// One job, or `None` when no job has this id.
    pub async fn job(&self, job_id: JobId) -> Result<Option<JobRecord>, StoreError> {
        let row = sqlx::query("SELECT * FROM jobs WHERE job_id = ?")
            .bind(to_i64(job_id.0))
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| job_record(&row)).transpose()
    }

    /// The most recent jobs, newest first.
    pub async fn recent_jobs(&self, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM jobs ORDER BY created_ms DESC, job_id LIMIT ?")
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_record).collect()
    }

    /// Records that `uploader` sent the bytes of `blob_id`.
    pub async fn record_upload(&self, blob_id: BlobId, uploader: &str) -> Result<(), StoreError> {
        sqlx::query("INSERT OR IGNORE INTO blob_uploads (blob_id, uploader) VALUES (?, ?)")
            .bind(blob_id.0.as_slice())
            .bind(uploader)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Whether `uploader` sent the bytes of `blob_id` (and the store has them).
    pub async fn uploaded_by(&self, blob_id: BlobId, uploader: &str) -> Result<bool, StoreError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM blob_uploads WHERE blob_id = ? AND uploader = ?")
            .bind(blob_id.0.as_slice())
            .bind(uploader)
            .fetch_optional(&self.pool)
            .await?;
        Ok(found.is_some() && self.has_blob(blob_id).await?)
    }

    /// The most recent jobs `submitter` owns, newest first.
    pub async fn jobs_of(&self, submitter: &str, limit: u32) -> Result<Vec<JobRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM jobs WHERE submitter = ? ORDER BY created_ms DESC, job_id LIMIT ?")
            .bind(submitter)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(job_record).collect()
    }

    /// Whether `address` may read blob `blob_id`: it owns a job whose task
    /// input, committed output, artifact or asset (a wasm job's module or
    /// file) the blob is, holds the current lease of a task whose input it
    /// is or of any task of a job whose asset it is, or committed it as an
    /// output.
    pub async fn blob_readable_by(&self, blob_id: BlobId, address: &str) -> Result<bool, StoreError> {
        let blob = blob_id.0.as_slice();
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM tasks t JOIN jobs j ON j.job_id = t.job_id \
               WHERE t.input_blob = ?1 AND (j.submitter = ?2 OR (t.state = 'leased' AND t.lease_worker = ?2)) \
             UNION ALL SELECT 1 FROM commits c JOIN jobs j ON j.job_id = c.job_id \
               WHERE c.output_blob = ?1 AND (j.submitter = ?2 OR c.worker_id = ?2) \
             UNION ALL SELECT 1 FROM artifacts a JOIN jobs j ON j.job_id = a.job_id \
               WHERE a.blob = ?1 AND j.submitter = ?2 \
             UNION ALL SELECT 1 FROM job_assets s JOIN jobs j ON j.job_id = s.job_id \
               WHERE s.blob = ?1 AND (j.submitter = ?2 OR EXISTS (SELECT 1 FROM tasks t \
                 WHERE t.lease_worker = ?2 AND t.job_id = s.job_id AND t.state = 'leased')) \
             LIMIT 1",
        )
        .bind(blob)
        .bind(address)
        .fetch_optional(&self.pool)
        .await?;
        Ok(found.is_some())
    }

    /// Who holds a task's lease now and under which token; `None` unless
    /// the task is leased.
    pub async fn current_lease(&self, task_id: TaskId) -> Result<Option<(WorkerId, LeaseToken)>, StoreError> {
        let row = sqlx::query(
            "SELECT lease_worker, lease_token FROM tasks WHERE job_id = ? AND task_idx = ? AND state = 'leased'",
        )
        .bind(to_i64(task_id.job_id.0))
        .bind(i64::from(task_id.task_idx))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let worker: Option<String> = row.try_get("lease_worker")?;
        let token: Option<i64> = row.try_get("lease_token")?;
        Ok(worker.zip(token).map(|(worker, token)| (WorkerId(worker), LeaseToken(to_u64(token)))))
    }

    /// A task's input blob and its job's workload, read together: what
    /// checking a reported output needs first. `None` for an unknown task.
    pub async fn task_input(&self, task_id: TaskId) -> Result<Option<(BlobId, String)>, StoreError> {
        let row = sqlx::query(
            "SELECT t.input_blob, j.workload FROM tasks t JOIN jobs j ON j.job_id = t.job_id \
             WHERE t.job_id = ? AND t.task_idx = ?",
        )
        .bind(to_i64(task_id.job_id.0))
        .bind(i64::from(task_id.task_idx))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((blob_id(row.try_get("input_blob")?)?, row.try_get("workload")?)))
    }

    /// Every task of a job in task order, with commits.
    pub async fn tasks(&self, job_id: JobId) -> Result<Vec<TaskRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT t.job_id, t.task_idx, t.state, t.input_blob, t.attempts, t.lease_token, t.lease_worker, \
                    t.not_before_ms, t.last_error, t.verified_output, c.worker_id, c.lease_token AS c_token, \
                    c.output_blob, c.duration_ms, c.committed_ms, c.price, c.verdict, c.device \
             FROM tasks t LEFT JOIN commits c ON c.job_id = t.job_id AND c.task_idx = t.task_idx \
             WHERE t.job_id = ? ORDER BY t.task_idx",
        )
        .bind(to_i64(job_id.0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(task_record).collect()
    }

    /// Counts of a job's tasks by state and by worker, without reading every task.
    pub async fn job_progress(&self, job_id: JobId) -> Result<JobProgress, StoreError> {
        let id = to_i64(job_id.0);
        let mut progress = JobProgress::default();
        let rows = sqlx::query("SELECT state, COUNT(*) AS n FROM tasks WHERE job_id = ? GROUP BY state")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            progress.by_state.push((task_state(row.try_get("state")?)?, row.try_get::<i64, _>("n")? as u32));
        }
        let rows = sqlx::query(
            "SELECT worker_id, COUNT(*) AS n, SUM(duration_ms) AS busy_ms FROM commits WHERE job_id = ? \
             GROUP BY worker_id ORDER BY worker_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            progress.committed_by_worker.push((
                WorkerId(row.try_get("worker_id")?),
                row.try_get::<i64, _>("n")? as u32,
                to_u64(row.try_get("busy_ms")?),
            ));
        }
        let rows = sqlx::query(
            "SELECT lease_worker, COUNT(*) AS n FROM tasks WHERE job_id = ? AND state = 'leased' \
             GROUP BY lease_worker ORDER BY lease_worker",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            let worker: Option<String> = row.try_get("lease_worker")?;
            if let Some(worker) = worker {
                progress.leased_by_worker.push((WorkerId(worker), row.try_get::<i64, _>("n")? as u32));
            }
        }
        progress.n_settled =
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM tasks WHERE job_id = ? AND verified_output IS NOT NULL")
                .bind(id)
                .fetch_one(&self.pool)
                .await? as u32;
        let rows = sqlx::query(
            "SELECT worker_id, COUNT(*) AS n FROM commits WHERE job_id = ? AND verdict = 'wrong' \
             GROUP BY worker_id ORDER BY worker_id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        for row in rows {
            progress.wrong_by_worker.push((WorkerId(row.try_get("worker_id")?), row.try_get::<i64, _>("n")? as u32));
        }
        Ok(progress)
    }

    /// How many commit rows a job has (each task can have at most one).
    pub async fn n_commits(&self, job_id: JobId) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM commits WHERE job_id = ?")
            .bind(to_i64(job_id.0))
            .fetch_one(&self.pool)
            .await?;
        Ok(to_u64(n))
    }

    /// Records a done job's artifacts (idempotent: the same names replace themselves).
    pub async fn put_artifacts(&self, job_id: JobId, artifacts: &[ArtifactRecord]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for artifact in artifacts {
            sqlx::query(
                "INSERT OR REPLACE INTO artifacts (job_id, name, media_type, blob, size_bytes) VALUES (?, ?, ?, ?, ?)",
            )
            .bind(to_i64(job_id.0))
            .bind(&artifact.name)
            .bind(&artifact.media_type)
            .bind(artifact.blob.0.as_slice())
            .bind(to_i64(artifact.size_bytes))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// A job's artifacts by name.
    pub async fn artifacts(&self, job_id: JobId) -> Result<Vec<ArtifactRecord>, StoreError> {
        let rows =
            sqlx::query("SELECT name, media_type, blob, size_bytes FROM artifacts WHERE job_id = ? ORDER BY name")
                .bind(to_i64(job_id.0))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(ArtifactRecord {
                    name: row.try_get("name")?,
                    media_type: row.try_get("media_type")?,
                    blob: blob_id(row.try_get("blob")?)?,
                    size_bytes: to_u64(row.try_get("size_bytes")?),
                })
            })
            .collect()
    }

    /// Done jobs whose artifacts were never written (the coordinator stopped
    /// between the last commit and the assembly); assembled again on start.
    /// (A sealed job never has any: its submitter assembles it.)
    pub async fn done_jobs_without_artifacts(&self) -> Result<Vec<JobId>, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT job_id FROM jobs j WHERE state = 'done' AND sealed = 0 \
             AND NOT EXISTS (SELECT 1 FROM artifacts a WHERE a.job_id = j.job_id)",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(ids.into_iter().map(|id| JobId(to_u64(id))).collect())
    }

    /// Remembers a worker that joined, with what it offered.
    pub async fn record_worker(
        &self,
        worker_id: &WorkerId,
        devices_json: &str,
        offer_json: &str,
        version: &str,
        now: UnixMs,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO workers (worker_id, devices_json, offer_json, version, first_seen_ms, last_seen_ms) \
             VALUES (?, ?, ?, ?, ?, ?) \
             ON CONFLICT (worker_id) DO UPDATE SET devices_json = excluded.devices_json, \
             offer_json = excluded.offer_json, version = excluded.version, last_seen_ms = excluded.last_seen_ms",
        )
        .bind(&worker_id.0)
        .bind(devices_json)
        .bind(offer_json)
        .bind(version)
        .bind(to_i64(now))
        .bind(to_i64(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every worker that ever joined.
    pub async fn workers(&self) -> Result<Vec<WorkerRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM workers ORDER BY worker_id").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(WorkerRecord {
                    worker_id: WorkerId(row.try_get("worker_id")?),
                    devices_json: row.try_get("devices_json")?,
                    offer_json: row.try_get("offer_json")?,
                    version: row.try_get("version")?,
                    first_seen_ms: to_u64(row.try_get("first_seen_ms")?),
                    last_seen_ms: to_u64(row.try_get("last_seen_ms")?),
                })
            })
            .collect()
    }

    /// The ledger journal in order: `(seq, encoded entry)`.
    pub async fn journal(&self) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT seq, entry FROM ledger_journal ORDER BY seq").fetch_all(&self.pool).await?;
        Ok(rows.into_iter().map(|(seq, entry)| (to_u64(seq), entry)).collect())
    }

    /// Up to `limit` journal rows after sequence number `after` (from the
    /// first when `None`), in order.
    pub async fn journal_page(&self, after: Option<u64>, limit: u32) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as("SELECT seq, entry FROM ledger_journal WHERE seq > ? ORDER BY seq LIMIT ?")
                .bind(after.map_or(-1, to_i64))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await?;
        Ok(rows.into_iter().map(|(seq, entry)| (to_u64(seq), entry)).collect())
    }

    /// Closes the connections, checkpointing the write-ahead log.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

async fn insert_blob(tx: &mut sqlx::SqliteConnection, blob_id: BlobId, bytes: &[u8]) -> Result<(), StoreError> {
    if bytes.len() > INLINE_BLOB_BYTES_MAX {
        return Err(StoreError::BlobTooLarge {
            size_bytes: bytes.len() as u64,
            limit_bytes: INLINE_BLOB_BYTES_MAX as u64,
        });
    }
    sqlx::query("INSERT OR IGNORE INTO blobs (blob_id, bytes) VALUES (?, ?)")
        .bind(blob_id.0.as_slice())
        .bind(bytes)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Appends the statements that make `change` durable to `script`.
fn push_change<'a>(script: &mut QueryBuilder<'a, Sqlite>, change: &'a Change) {
    match change {
        Change::WorkerRecorded { worker_id, record } => {
            let count = |n: u64| to_i64(n);
            script.push(
                "INSERT OR REPLACE INTO worker_records (worker_id, challenges_passed, challenges_failed, \
                 challenges_failed_in_row, tasks_committed, tasks_failed, leases_lapsed, online_hours, \
                 results_valid, results_wrong, valid_streak) VALUES (",
            );
            script.push_bind(&worker_id.0);
            script.push(", ").push_bind(i64::from(record.challenges.passed));
            script.push(", ").push_bind(i64::from(record.challenges.failed));
            script.push(", ").push_bind(i64::from(record.challenges.failed_in_row));
            script.push(", ").push_bind(count(record.reputation.tasks_committed));
            script.push(", ").push_bind(count(record.reputation.tasks_failed));
            script.push(", ").push_bind(count(record.reputation.leases_lapsed));
            script.push(", ").push_bind(count(record.reputation.online_hours));
            script.push(", ").push_bind(count(record.reputation.results_valid));
            script.push(", ").push_bind(count(record.reputation.results_wrong));
            script.push(", ").push_bind(count(record.reputation.valid_streak)).push(");\n");
        }
        Change::JobCreated { job, max_attempts, created_ms } => {
            let job_id = to_i64(job.job_id.0);
            script.push(
                "INSERT INTO jobs (job_id, name, workload, spec_json, state, max_attempts, n_tasks, created_ms, \
                 requirements_json, submitter, task_timeout_ms, verify, sealed, chained) VALUES (",
            );
            script.push_bind(job_id).push(", ").push_bind(&job.name).push(", ").push_bind(&job.workload);
            script.push(", ").push_bind(&job.spec_json).push(", 'running', ").push_bind(i64::from(*max_attempts));
            let n_tasks = job.chain.map_or(job.inputs.len() as i64, i64::from);
            script.push(", ").push_bind(n_tasks).push(", ").push_bind(to_i64(*created_ms));
            let requirements_json = serde_json::to_string(&job.requirements).expect("requirements serialise");
            script.push(", ").push_bind(requirements_json).push(", ").push_bind(&job.submitter);
            script.push(", ").push_bind(job.task_timeout_ms.map(to_i64));
            script.push(", ").push_bind(job.verify.to_text()).push(", ").push_bind(job.sealed);
            let chain_width = job.chain.map_or(0, |_| job.inputs.len() as i64);
            script.push(", ").push_bind(chain_width).push(");\n");
            let indexed: Vec<(usize, &BlobId)> = job.inputs.iter().enumerate().collect();
            for chunk in indexed.chunks(ROWS_PER_INSERT) {
                script.push("INSERT INTO tasks (job_id, task_idx, state, input_blob) ");
                script.push_values(chunk.iter().copied(), |mut row, (task_idx, input)| {
                    row.push_bind(job_id).push_bind(task_idx as i64).push_bind("queued").push_bind(input.0.as_slice());
                });
                script.push(";\n");
            }
            for chunk in job.assets.chunks(ROWS_PER_INSERT) {
                script.push("INSERT OR IGNORE INTO job_assets (job_id, blob) ");
                script.push_values(chunk, |mut row, blob| {
                    row.push_bind(job_id).push_bind(blob.0.as_slice());
                });
                script.push(";\n");
            }
        }
        Change::TaskLeased { task_id, worker_id, token, attempts, price_io_per_hour } => {
            script.push("UPDATE tasks SET state = 'leased', lease_worker = ").push_bind(&worker_id.0);
            script.push(", lease_token = ").push_bind(to_i64(token.0));
            script.push(", attempts = ").push_bind(i64::from(*attempts));
            script.push(", lease_price = ").push_bind(to_i64(price_io_per_hour.base_units()));
            push_task_key(script, task_id);
        }
        Change::TaskCommitted {
            task_id,
            worker_id,
            token,
            output,
            duration_ms,
            committed_ms,
            price_io_per_hour,
            device,
            model,
        } => {
            script.push("UPDATE tasks SET state = 'committed', lease_worker = NULL");
            push_task_key(script, task_id);
            script.push(
                "INSERT INTO commits (job_id, task_idx, worker_id, lease_token, output_blob, duration_ms, committed_ms, \
                 price, device, model) VALUES (",
            );
            script.push_bind(to_i64(task_id.job_id.0)).push(", ").push_bind(i64::from(task_id.task_idx));
            script.push(", ").push_bind(&worker_id.0).push(", ").push_bind(to_i64(token.0));
            script.push(", ").push_bind(output.0.as_slice()).push(", ").push_bind(to_i64(*duration_ms));
            script.push(", ").push_bind(to_i64(*committed_ms));
            script.push(", ").push_bind(to_i64(price_io_per_hour.base_units()));
            // No device named is stored as unknown, like commits from before
            // devices were recorded.
            let device = (!device.is_empty()).then_some(device.as_str());
            script.push(", ").push_bind(device).push(", ").push_bind(model.as_deref()).push(");\n");
        }
        Change::TaskAdded { task_id, input } => {
            script.push("INSERT INTO tasks (job_id, task_idx, state, input_blob) VALUES (");
            script.push_bind(to_i64(task_id.job_id.0)).push(", ").push_bind(i64::from(task_id.task_idx));
            script.push(", 'queued', ").push_bind(input.0.as_slice()).push(");\n");
        }
        Change::TaskVerified { task_id, output, valid, wrong } => {
            script.push("UPDATE tasks SET verified_output = ").push_bind(output.0.as_slice());
            push_task_key(script, task_id);
            for result in valid {
                script.push("UPDATE commits SET verdict = 'valid'");
                push_task_key(script, &result.task_id);
            }
            for result in wrong {
                script.push("UPDATE commits SET verdict = 'wrong'");
                push_task_key(script, &result.task_id);
            }
        }
        Change::ResultRejected { task_id, reason, .. } => {
            script.push("UPDATE commits SET verdict = 'wrong'");
            push_task_key(script, task_id);
            script.push("UPDATE tasks SET last_error = ").push_bind(reason);
            push_task_key(script, task_id);
        }
        Change::TaskYielded { task_id, attempts, reason } => {
            script.push("UPDATE tasks SET state = 'queued', lease_worker = NULL, not_before_ms = 0, attempts = ");
            script.push_bind(i64::from(*attempts)).push(", last_error = ").push_bind(reason);
            push_task_key(script, task_id);
        }
        Change::TaskRequeued { task_id, not_before_ms, error } => {
            script.push("UPDATE tasks SET state = 'queued', lease_worker = NULL, not_before_ms = ");
            script.push_bind(to_i64(*not_before_ms)).push(", last_error = ").push_bind(error);
            push_task_key(script, task_id);
        }
        Change::TaskFailed { task_id, error } => {
            script.push("UPDATE tasks SET state = 'failed', lease_worker = NULL, last_error = ").push_bind(error);
            push_task_key(script, task_id);
        }
        Change::JobEnded { job_id, state, reason, ended_ms } => {
            script.push("UPDATE jobs SET state = ").push_bind(state.as_str());
            script.push(", reason = ").push_bind(reason).push(", ended_ms = ").push_bind(to_i64(*ended_ms));
            script.push(" WHERE job_id = ").push_bind(to_i64(job_id.0)).push(";\n");
            script.push("UPDATE tasks SET state = 'cancelled', lease_worker = NULL WHERE job_id = ");
            script.push_bind(to_i64(job_id.0)).push(" AND state IN ('queued', 'leased');\n");
        }
    }
}

fn push_task_key<'a>(script: &mut QueryBuilder<'a, Sqlite>, task_id: &TaskId) {
    script.push(" WHERE job_id = ").push_bind(to_i64(task_id.job_id.0));
    script.push(" AND task_idx = ").push_bind(i64::from(task_id.task_idx)).push(";\n");
}

fn verify_policy(job_id: &JobId, text: String) -> Result<iog_types::Verify, StoreError> {
    iog_types::Verify::parse_text(&text)
        .ok_or_else(|| StoreError::Corrupt(format!("job {job_id}'s verification policy {text:?}")))
}

fn job_record(row: &SqliteRow) -> Result<JobRecord, StoreError> {
    Ok(JobRecord {
        job_id: JobId(to_u64(row.try_get("job_id")?)),
        name: row.try_get("name")?,
        workload: row.try_get("workload")?,
        spec_json: row.try_get("spec_json")?,
        state: job_state(row.try_get("state")?)?,
        reason: row.try_get("reason")?,
        max_attempts: row.try_get::<i64, _>("max_attempts")? as u32,
        n_tasks: row.try_get::<i64, _>("n_tasks")? as u32,
        submitter: row.try_get("submitter")?,
        verify: verify_policy(&JobId(to_u64(row.try_get("job_id")?)), row.try_get("verify")?)?,
        sealed: row.try_get("sealed")?,
        created_ms: to_u64(row.try_get("created_ms")?),
        ended_ms: row.try_get::<Option<i64>, _>("ended_ms")?.map(to_u64),
    })
}

fn task_record(row: &SqliteRow) -> Result<TaskRecord, StoreError> {
    let task_id = TaskId::new(JobId(to_u64(row.try_get("job_id")?)), row.try_get::<i64, _>("task_idx")? as u32);
    let commit = match row.try_get::<Option<String>, _>("worker_id")? {
        Some(worker_id) => Some(CommitRecord {
            worker_id: WorkerId(worker_id),
            token: LeaseToken(to_u64(row.try_get("c_token")?)),
            output: blob_id(row.try_get("output_blob")?)?,
            duration_ms: to_u64(row.try_get("duration_ms")?),
            committed_ms: to_u64(row.try_get("committed_ms")?),
            price_io_per_hour: Amount::from_base_units(to_u64(row.try_get("price")?)),
            verdict: match row.try_get::<Option<String>, _>("verdict")?.as_deref() {
                None => None,
                Some("valid") => Some(true),
                Some("wrong") => Some(false),
                Some(other) => {
                    return Err(StoreError::Corrupt(format!("task {task_id}'s commit has verdict {other:?}")));
                }
            },
            device: row.try_get::<Option<String>, _>("device")?.filter(|device| !device.is_empty()),
        }),
        None => None,
    };
    Ok(TaskRecord {
        task_id,
        state: task_state(row.try_get("state")?)?,
        input: blob_id(row.try_get("input_blob")?)?,
        attempts: row.try_get::<i64, _>("attempts")? as u32,
        token: row.try_get::<Option<i64>, _>("lease_token")?.map(|t| LeaseToken(to_u64(t))),
        holder: row.try_get::<Option<String>, _>("lease_worker")?.map(WorkerId),
        not_before_ms: to_u64(row.try_get("not_before_ms")?),
        last_error: row.try_get("last_error")?,
        verified_output: row.try_get::<Option<Vec<u8>>, _>("verified_output")?.map(blob_id).transpose()?,
        commit,
    })
}
