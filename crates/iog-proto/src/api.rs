//! Bodies of the REST API. Every error crosses the API as [`ApiError`].

use iog_types::{BlobId, Device, JobId, JobState, TaskId, TaskState, WorkerId};
use serde::{Deserialize, Serialize};

/// An error answer: a stable machine-readable `code` and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

/// `POST /v1/jobs`: the job spec as JSON (a job file with scene files inlined).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmitJob {
    pub spec: serde_json::Value,
}

/// Answer to a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmittedJob {
    pub job_id: JobId,
    pub n_tasks: u32,
}

/// Counts of a job's tasks by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCounts {
    pub queued: u32,
    pub leased: u32,
    pub committed: u32,
    pub failed: u32,
    pub cancelled: u32,
}

/// What one worker did for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerShare {
    pub worker_id: WorkerId,
    pub n_committed: u32,
    /// Tasks of this job the worker holds right now.
    pub n_leased: u32,
    /// Sum of the committed tasks' run times.
    pub busy_ms: u64,
}

/// One final output of a done job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub name: String,
    pub media_type: String,
    pub blob: BlobId,
    pub size_bytes: u64,
}

/// `GET /v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    pub job_id: JobId,
    pub name: String,
    pub workload: String,
    pub state: JobState,
    /// Why the job failed or was cancelled.
    pub reason: Option<String>,
    pub n_tasks: u32,
    pub tasks: TaskCounts,
    pub workers: Vec<WorkerShare>,
    pub created_ms: u64,
    pub ended_ms: Option<u64>,
    /// Present once a done job's outputs are assembled.
    pub artifacts: Vec<Artifact>,
}

impl JobStatus {
    /// Final and, when done, with its artifacts ready to download.
    pub fn is_settled(&self) -> bool {
        self.state.is_final() && (self.state != iog_types::JobState::Done || !self.artifacts.is_empty())
    }
}

/// `GET /v1/jobs/{id}/tasks`: one entry per task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_id: TaskId,
    pub state: TaskState,
    pub attempts: u32,
    pub holder: Option<WorkerId>,
    pub last_error: Option<String>,
    pub committed_by: Option<WorkerId>,
    pub output: Option<BlobId>,
    pub duration_ms: Option<u64>,
}

/// `GET /v1/workers`: one entry per worker that ever joined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub worker_id: WorkerId,
    pub online: bool,
    pub agent_version: String,
    pub devices: Vec<Device>,
    pub slots: u32,
    pub n_leases: u32,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub protocol_version: u32,
}

/// `GET /v1/wallets/{address}`: a wallet's balance, amounts written like `1.5 IO`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletStatus {
    pub address: String,
    /// What the wallet can spend now.
    pub available: String,
    /// Settled balance (available plus what is held).
    pub posted: String,
    /// Held for pending transfers (job escrows).
    pub held: String,
}

/// `POST /v1/wallets/{address}/faucet` on a development network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaucetRequest {
    /// How much, e.g. `"5"` or `"0.25 IO"`.
    pub amount: String,
    /// Makes a retried request safe: the same id grants once. Written `t-<32 hex>`.
    pub request_id: String,
}
