use iog_ledger::Amount;
use iog_sched::{Offer, Requirements};
use iog_types::{BlobId, JobId, JobState, LeaseToken, TaskId, UnixMs, Verify, WorkerId};

/// A job the coordinator has accepted and is about to make durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJob {
    pub job_id: JobId,
    pub name: String,
    pub workload: String,
    /// The validated job spec as JSON; the core keeps it only to hand it to the store.
    pub spec_json: Vec<u8>,
    /// Attempts per task; `None` takes the configured default.
    pub max_attempts: Option<u32>,
    /// A lease that has not ended this long after it was granted lapses
    /// (counting an attempt), whatever its holder's heartbeats say; `None`
    /// lets a task run as long as its worker lives.
    pub task_timeout_ms: Option<u64>,
    /// Input blob of each task, in task order; of the first link's tasks
    /// only for a chained job.
    pub inputs: Vec<BlobId>,
    /// `Some(n)`: the job's n tasks run in links of `inputs.len()` tasks
    /// (its width), one link after another, each link's tasks made from
    /// the accepted results of the link before: one task a link for the
    /// time windows of a simulation, K for the rounds of training across K
    /// workers. `inputs` holds the first link's inputs; the shell makes
    /// each next link's when asked ([`Action::ChainInput`]). `n` is a
    /// multiple of the width.
    pub chain: Option<u32>,
    /// What each task needs of a worker.
    pub requirements: Requirements,
    /// Who pays: the payer's wallet address, or empty for a free job.
    /// Devices are shared fairly between submitters.
    pub submitter: String,
    /// How its results are checked before they are accepted and paid.
    pub verify: Verify,
    /// Its inputs and results are sealed to the submitter and the workers
    /// that run it; the coordinator holds only ciphertext and assembles
    /// nothing.
    pub sealed: bool,
    /// Blobs its tasks read besides their inputs (a wasm job's module and
    /// files): a worker may read them while it holds one of its leases.
    pub assets: Vec<BlobId>,
}

/// A replica whose result a task's verification accepted: it is paid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidResult {
    /// The replica (a task of its own).
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    /// The run time its commit recorded.
    pub duration_ms: u64,
    /// Its lease's price per hour.
    pub price_io_per_hour: Amount,
}

/// A replica whose result disagreed with the accepted one: it is not paid,
/// and its worker's stake is slashed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrongResult {
    pub task_id: TaskId,
    pub worker_id: WorkerId,
    pub output: BlobId,
}

/// A task a worker says it is running (sent when it connects, so leases
/// survive a dropped connection or a coordinator restart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunningTask {
    pub task_id: TaskId,
    pub token: LeaseToken,
}

/// Something that happened, fed to [`crate::Core::handle`].
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A worker opened its session with its offer (validated by the shell)
    /// and the trust level the shell grants it. `running` lists the tasks
    /// it still works on.
    WorkerConnected { worker_id: WorkerId, offer: Offer, trust: u8, running: Vec<RunningTask> },
    /// A connected worker's owner changed its offer (price, region, hours,
    /// devices). Tasks it runs keep their lease and their price.
    OfferChanged { worker_id: WorkerId, offer: Offer },
    /// A worker measured its round-trip time to the coordinator; placement
    /// ranks distant workers lower.
    WorkerRtt { worker_id: WorkerId, rtt_ms: u32 },
    /// A worker's network coordinate, which it keeps from round trips to
    /// peers the coordinator names (Vivaldi). Gangs are formed by the
    /// latencies these estimate once the coordinate has settled. The shell
    /// passes only sane coordinates ([`iog_sched::Coord::is_sane`]).
    WorkerCoord { worker_id: WorkerId, coord: iog_sched::Coord },
    /// The shell ran a hardware challenge with the worker and checked the
    /// answer (`iog-trust`): `passed`, or failed for `detail` (a wrong
    /// answer, a missed deadline, no answer). Passing marks the worker's
    /// hardware verified, which raises its trust level by one; failing
    /// takes that away and keeps the worker from new tasks until it passes
    /// again, and failing [`crate::Config::challenge_failures_slash`] times
    /// in a row slashes its stake.
    /// `round` is the one [`Action::Challenge`] named: a report of any
    /// other round (one that timed out, a repeat) is ignored. Round 0 is a
    /// result the core did not ask for, taken as it comes (tests drive a
    /// worker's record this way; the shells always name the round).
    ChallengeChecked { worker_id: WorkerId, round: u64, passed: bool, detail: String },
    /// A worker's owner started (`paused`) or stopped using the machine.
    /// While paused the worker gets no tasks; pausing hands its tasks back
    /// to the queue without counting the attempt.
    WorkerPaused { worker_id: WorkerId, paused: bool, reason: String },
    /// A worker is alive. Renews every lease it holds. `held` lists the
    /// tasks it is running or holds results of, so that leases whose
    /// assignment never reached it lapse, and leases it holds that are no
    /// longer current are revoked.
    Heartbeat { worker_id: WorkerId, held: Vec<RunningTask> },
    /// A worker's session closed. Its leases stay until it is declared dead,
    /// so a worker that reconnects quickly loses nothing.
    WorkerDisconnected { worker_id: WorkerId },
    /// A submitter's job, planned into tasks.
    JobSubmitted(NewJob),
    /// A worker finished a task and uploaded its output. `duration_ms` is
    /// the run time it reports; the core commits it capped at the lease's age.
    /// `device` is the device it says ran the task, as it names it (`cpu0`,
    /// `gpu0`); the shell bounds and sanitises it first, and the core only
    /// records it with the commit.
    TaskSucceeded {
        worker_id: WorkerId,
        task_id: TaskId,
        token: LeaseToken,
        output: BlobId,
        duration_ms: u64,
        device: String,
    },
    /// The shell recomputed the sample [`Action::SpotCheck`] asked for:
    /// `passed` when it matched the replica's output, else `detail` says
    /// which sample differed.
    SpotChecked { task_id: TaskId, passed: bool, detail: String },
    /// The shell compared the outputs [`Action::CompareOutputs`] asked
    /// about: `classes[r]` is the first replica whose output replica `r`'s
    /// agrees with within the workload's tolerance (`r` itself when none
    /// before it does), as `iog_workloads::outputs_agree` tells.
    OutputsCompared { task_id: TaskId, outputs: Vec<BlobId>, classes: Vec<u8> },
    /// The shell made the inputs [`Action::ChainInput`] asked for (of the
    /// link whose first task is `task_idx`, one per task of the link, in
    /// order) and stored them as blobs.
    ChainInputReady { job_id: JobId, task_idx: u32, inputs: Vec<BlobId> },
    /// The shell could not make those inputs: the job fails with `reason`.
    ChainInputFailed { job_id: JobId, task_idx: u32, reason: String },
    /// A worker could not run a task.
    TaskFailed { worker_id: WorkerId, task_id: TaskId, token: LeaseToken, error: String },
    /// The worker holding a task of a sealed job asked for its key and the
    /// submitter gave none within the coordinator's wait.
    /// The task goes back to the queue (the attempt counts, so a submitter
    /// who never answers ends with a failed job) and the worker is told to
    /// drop it; unlike [`Event::TaskFailed`], nothing counts against the
    /// worker, whose only part was to wait.
    KeyNotGiven { worker_id: WorkerId, task_id: TaskId, token: LeaseToken, waited_ms: u64 },
    /// The submitter cancels a job.
    CancelJob { job_id: JobId },
    /// The shell ends a running job as failed, for a reason of its own (its
    /// escrow ran dry, say). Ignored when the job is not running.
    FailJob { job_id: JobId, reason: String },
    /// Time passed: detect dead workers, release retries whose backoff ended.
    Tick,
}

/// How the coordinator answered a task result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The result is now the task's committed result.
    Committed,
    /// The task was already committed by this same lease; nothing changed.
    Duplicate,
    /// The lease is no longer current (lapsed, revoked, or the task belongs to
    /// someone else now); the result was refused.
    Stale,
}

impl CommitOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            CommitOutcome::Committed => "committed",
            CommitOutcome::Duplicate => "duplicate",
            CommitOutcome::Stale => "stale",
        }
    }
}

/// A durable state change. The shell writes all changes produced by one
/// batch of events in one store transaction before it acts on anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    JobCreated {
        /// Boxed: the largest change by far, and rare.
        job: Box<NewJob>,
        max_attempts: u32,
        created_ms: UnixMs,
    },
    TaskLeased {
        task_id: TaskId,
        worker_id: WorkerId,
        token: LeaseToken,
        attempts: u32,
        /// What the lease pays per hour: the worker's price per device-hour
        /// times the devices the task uses.
        price_io_per_hour: Amount,
    },
    TaskCommitted {
        task_id: TaskId,
        worker_id: WorkerId,
        token: LeaseToken,
        output: BlobId,
        duration_ms: u64,
        committed_ms: UnixMs,
        /// The committing lease's price per hour; a paid job is charged
        /// `duration_ms` at this price.
        price_io_per_hour: Amount,
        /// The device the worker says ran it (`cpu0`, `gpu0`), as
        /// [`Event::TaskSucceeded`] gave it; for people to read, never a
        /// basis for a decision.
        device: String,
        /// The model of the devices it ran on, for a job whose replicas
        /// keep to one model (`Requirements::replicas_same_model`); `None`
        /// for any other job.
        model: Option<String>,
    },
    /// Verification asked for another replica of a task: a task of its own
    /// with the same input (its index is given by [`iog_types::replica_index`]).
    TaskAdded {
        task_id: TaskId,
        input: BlobId,
    },
    /// A task's result is accepted (`task_id` is the task, replica 0):
    /// `output` is what its job's artifacts are built from. The replicas in
    /// `valid` are paid now, those in `wrong` never. A job that does not
    /// verify has this right after each commit, with that one replica valid.
    TaskVerified {
        task_id: TaskId,
        output: BlobId,
        valid: Vec<ValidResult>,
        wrong: Vec<WrongResult>,
    },
    /// A spot check proved a run's result wrong: it is never paid, and its
    /// task runs again elsewhere.
    ResultRejected {
        task_id: TaskId,
        worker_id: WorkerId,
        output: BlobId,
        reason: String,
    },
    /// The worker's owner took the machine back: the task is queued again
    /// at once with `attempts` (the yielded attempt not counted).
    TaskYielded {
        task_id: TaskId,
        attempts: u32,
        reason: String,
    },
    /// Back to the queue, not before `not_before_ms`.
    TaskRequeued {
        task_id: TaskId,
        not_before_ms: UnixMs,
        error: String,
    },
    TaskFailed {
        task_id: TaskId,
        error: String,
    },
    /// A worker's record of challenges and task outcomes changed.
    WorkerRecorded {
        worker_id: WorkerId,
        record: crate::WorkerRecord,
    },
    /// Every task of the job that was not final is now cancelled.
    JobEnded {
        job_id: JobId,
        state: JobState,
        reason: Option<String>,
        ended_ms: UnixMs,
    },
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make this change durable (before any message below goes out).
    Persist(Change),
    /// Tell a worker to run a task under a lease.
    Assign { worker_id: WorkerId, task_id: TaskId, token: LeaseToken, input: BlobId },
    /// Tell a worker to stop a task; its lease is gone.
    Revoke { worker_id: WorkerId, task_id: TaskId, token: LeaseToken, reason: String },
    /// Answer a worker's result.
    ResultReply { worker_id: WorkerId, task_id: TaskId, token: LeaseToken, outcome: CommitOutcome },
    /// A job reached a final state. When it is `Done` the shell assembles its artifacts.
    JobFinished { job_id: JobId, state: JobState },
    /// A worker was declared dead after missing its heartbeats.
    WorkerDead { worker_id: WorkerId },
    /// Run a hardware challenge with this worker, then report
    /// [`Event::ChallengeChecked`]. The worker takes no tasks meanwhile.
    /// `round` tells this round from every other, for the report.
    Challenge { worker_id: WorkerId, round: u64 },
    /// Recompute a sample of a run's output (`iog_workloads::spot_check`
    /// with this seed, secret to workers) and report
    /// [`Event::SpotChecked`]. Issued again after a restart for every run
    /// still waiting for its check.
    SpotCheck { task_id: TaskId, input: BlobId, output: BlobId, seed: u64 },
    /// A task's replicas returned different digests: tell which of these
    /// outputs (replica order; `task_id` is replica 0's) agree within the
    /// workload's tolerance, and report [`Event::OutputsCompared`]. Asked
    /// again when no report comes in time, and after a restart.
    CompareOutputs { task_id: TaskId, input: BlobId, outputs: Vec<BlobId> },
    /// Make the inputs of the next link of a chained job, whose first task
    /// is `task_idx`, from the link before it (`iog_workloads::next_inputs`
    /// of each of its tasks' input and accepted output, in task order),
    /// store them, and report [`Event::ChainInputReady`] (or
    /// [`Event::ChainInputFailed`]). Asked again when no report comes in
    /// time, and after a restart.
    ChainInput { job_id: JobId, task_idx: u32, previous: Vec<(BlobId, BlobId)> },
    /// Slash `bps` basis points of the worker's active stake into the
    /// rewards pool, once per `reason_key` (the payments follow this).
    SlashStake { worker_id: WorkerId, bps: u32, reason_key: String },
    /// The submission was accepted (made durable with the changes before it).
    JobAccepted { job_id: JobId },
    /// The submission was refused; nothing was stored.
    JobRejected { job_id: JobId, reason: String },
}
