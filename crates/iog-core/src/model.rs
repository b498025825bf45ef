use iog_ledger::Amount;
use iog_sched::{Offer, Requirements};
use iog_types::{BlobId, JobId, JobState, LeaseToken, TaskId, TaskState, UnixMs, Verify, WorkerId};

/// A job as the store remembers it, for [`crate::Core::restore`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredJob {
    pub job_id: JobId,
    pub state: JobState,
    pub max_attempts: u32,
    pub created_ms: UnixMs,
    pub requirements: Requirements,
    pub submitter: String,
    pub task_timeout_ms: Option<u64>,
    /// Tasks in its plan (replicas not counted).
    pub n_tasks: u32,
    pub verify: Verify,
    /// Tasks a link of a chained job holds (0: not chained). A chained
    /// job's links run one after another, each link's tasks made from the
    /// link before: only those made so far are stored.
    pub chain_width: u32,
}

/// A task (or a replica of one) as the store remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoredTask {
    pub task_id: TaskId,
    pub state: TaskState,
    pub input: BlobId,
    pub attempts: u32,
    /// Latest token issued for this task, if it was ever leased.
    pub token: Option<LeaseToken>,
    /// Holder of the lease, when `state` is `Leased`.
    pub holder: Option<WorkerId>,
    pub not_before_ms: UnixMs,
    pub output: Option<BlobId>,
    /// The price per hour of the current (or last) lease.
    pub price_io_per_hour: Amount,
    /// Who committed it, and the run time its commit recorded.
    pub committed_by: Option<WorkerId>,
    pub duration_ms: u64,
    /// For a task (replica 0): its accepted result, once it has one.
    pub accepted: Option<BlobId>,
    /// The verdict on its commit: accepted, proven wrong, or not yet.
    pub verdict: Option<bool>,
    /// The model its commit ran on, where the job keeps its replicas on
    /// one model.
    pub model: Option<String>,
}

/// Everything the core needs to pick up after a restart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub jobs: Vec<RestoredJob>,
    pub tasks: Vec<RestoredTask>,
    /// What is known of each worker's conduct.
    pub workers: Vec<(WorkerId, WorkerRecord)>,
}

/// A worker's conduct as the store keeps it: its hardware challenges and
/// its tasks' outcomes (its reputation's challenge counts are the
/// challenge record's).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerRecord {
    pub challenges: ChallengeRecord,
    pub reputation: crate::Reputation,
}

/// A read-only look at one task, for tests and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskView {
    pub task_id: TaskId,
    pub state: TaskState,
    pub attempts: u32,
    pub token: Option<LeaseToken>,
    pub holder: Option<WorkerId>,
    pub output: Option<BlobId>,
}

/// A read-only look at one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobView {
    pub job_id: JobId,
    pub state: JobState,
    /// Tasks in its plan (replicas not counted).
    pub n_tasks: u32,
    /// Tasks whose result is accepted: once committed for a job that does
    /// not verify, once its replicas agree for one that does.
    pub n_settled: u32,
    /// Tasks and replicas that exist, replicas of verification included.
    pub n_runs: u32,
}

/// A read-only look at one worker the core knows.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    pub worker_id: WorkerId,
    pub connected: bool,
    pub offer: Offer,
    pub trust: u8,
    /// The owner is using the machine.
    pub paused: bool,
    /// Last measured round-trip time to the coordinator; 0 until measured.
    pub rtt_ms: u32,
    /// The network coordinate the worker last reported (Vivaldi), if any.
    pub coord: Option<iog_sched::Coord>,
    /// Hardware challenges: passed and failed in all, failed in a row now.
    pub challenges: ChallengeRecord,
    /// A challenge is under way.
    pub challenging: bool,
    /// What it has done since the coordinator started, and its score.
    pub reputation: crate::Reputation,
    /// Connected, not paused, and inside an availability window.
    pub available: bool,
    pub devices_in_use: u32,
    /// Devices in use per group of `offer`, in its order.
    pub in_use_by_group: Vec<u32>,
    pub n_leases: u32,
    pub last_heartbeat_ms: UnixMs,
}

/// A worker's record of hardware challenges, kept while the coordinator
/// runs (across the worker's sessions, so reconnecting does not clear it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChallengeRecord {
    pub passed: u32,
    pub failed: u32,
    /// Failures since the last pass; while above zero the worker gets no
    /// new tasks.
    pub failed_in_row: u32,
}

impl ChallengeRecord {
    /// Its latest challenge passed.
    pub fn verified(&self) -> bool {
        self.passed > 0 && self.failed_in_row == 0
    }
}
