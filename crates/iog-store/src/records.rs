use iog_types::{BlobId, JobId, JobState, LeaseToken, TaskId, TaskState, UnixMs, WorkerId};

/// A job as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRecord {
    pub job_id: JobId,
    pub name: String,
    pub workload: String,
    pub spec_json: Vec<u8>,
    pub state: JobState,
    pub reason: Option<String>,
    pub max_attempts: u32,
    pub n_tasks: u32,
    /// The wallet address that submitted it and owns it ('' for jobs
    /// stored before owners were recorded: nobody's).
    pub submitter: String,
    /// How the job checks its results.
    pub verify: iog_types::Verify,
    /// Its inputs and results are sealed: the store holds only ciphertext.
    pub sealed: bool,
    pub created_ms: UnixMs,
    pub ended_ms: Option<UnixMs>,
}

/// The commit of one task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRecord {
    pub worker_id: WorkerId,
    pub token: LeaseToken,
    pub output: BlobId,
    pub duration_ms: u64,
    pub committed_ms: UnixMs,
    /// What the lease paid per hour (all its devices); zero for a free job.
    pub price_io_per_hour: iog_ledger::Amount,
    /// Verification's verdict: `Some(true)` accepted (and paid),
    /// `Some(false)` proven wrong, `None` while its task is not settled.
    pub verdict: Option<bool>,
    /// The device the committed attempt ran on, as its worker names it
    /// (`cpu0`, `gpu0`); `None` for commits stored before devices were
    /// recorded, or when the worker named none.
    pub device: Option<String>,
}

/// A task as stored, with its commit if it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRecord {
    pub task_id: TaskId,
    pub state: TaskState,
    pub input: BlobId,
    pub attempts: u32,
    pub token: Option<LeaseToken>,
    pub holder: Option<WorkerId>,
    pub not_before_ms: UnixMs,
    pub last_error: Option<String>,
    /// For a task (replica 0) whose result is accepted: that result, which
    /// may be another replica's output.
    pub verified_output: Option<BlobId>,
    pub commit: Option<CommitRecord>,
}

/// One final output of a done job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRecord {
    pub name: String,
    pub media_type: String,
    pub blob: BlobId,
    pub size_bytes: u64,
}

/// A worker that joined at some time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRecord {
    pub worker_id: WorkerId,
    pub devices_json: String,
    /// The last offer it made, as JSON; empty for workers from before offers.
    pub offer_json: String,
    pub version: String,
    pub first_seen_ms: UnixMs,
    pub last_seen_ms: UnixMs,
}

/// Aggregates of a job's tasks, computed by the database.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobProgress {
    /// Tasks per state.
    pub by_state: Vec<(TaskState, u32)>,
    /// Per worker: committed tasks and the sum of their run times.
    pub committed_by_worker: Vec<(WorkerId, u32, u64)>,
    /// Per worker: tasks it holds now.
    pub leased_by_worker: Vec<(WorkerId, u32)>,
    /// Tasks whose result is accepted.
    pub n_settled: u32,
    /// Results proven wrong, per worker.
    pub wrong_by_worker: Vec<(WorkerId, u32)>,
}

/// A checkpoint of the ledger journal as the coordinator signed it. Bytes are
/// kept as stored; the auditor checks their lengths and the signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub n_entries: u64,
    pub head_hash: Vec<u8>,
    /// The signer's ed25519 public key.
    pub signer: Vec<u8>,
    pub signature: Vec<u8>,
    pub signed_ms: u64,
}
