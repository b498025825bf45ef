use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use iog_ledger::Amount;
use iog_sched::index::{ClassId, EntryTerms};
use iog_sched::{EntryId, Index, Offer};
use iog_types::{JobId, JobState, LeaseToken, TaskId, TaskState, UnixMs, Verify, WorkerId, replica_index, replica_of};

use crate::config::Config;
use crate::event::{Action, Change, CommitOutcome, Event, NewJob, RunningTask, ValidResult, WrongResult};
use crate::model::{ChallengeRecord, JobView, Snapshot, TaskView, WorkerRecord, WorkerView};
use crate::queue::{Submitter, TaskQueue};
use crate::reputation::Reputation;
use crate::verify::{self, Verdict};

/// Times a spot check is asked for before its job fails for want of it.
const SPOT_ASKS_MAX: u32 = 3;

/// A link's tasks' inputs and accepted outputs, in task order: what the
/// next link of a chained job is made from.
type LinkResults = Vec<(iog_types::BlobId, iog_types::BlobId)>;

/// Most tasks a link of a chained job holds (the workers of one round of
/// training across workers).
pub const CHAIN_WIDTH_MAX: u32 = 1024;

/// Most tasks of a chained job (one after another, so far more than any
/// real chain; it bounds what the core keeps per chained job).
pub const CHAIN_TASKS_MAX: u32 = 1_000_000;

/// Ready tasks of a job looked at to find one a free worker may run, when
/// the first would run on a worker that ran another replica of its task.
const REPLICA_SCAN_MAX: usize = 64;

/// Round-trip times above this are taken as this (a worker that slow ranks
/// last anyway).
const RTT_MS_MAX: u32 = 10_000;

/// Placement sees reputation in steps of this many thousandths (40 steps).
pub const REPUTATION_RANK_STEP_MILLI: u16 = 25;

/// Whether the coordinator can challenge this offer's claims: the CPU's,
/// and each lent GPU's at its model's rate through the worker's GPU
/// kernel. An offer lending a GPU without kernels (a worker built without
/// the `gpu` feature) is not challenged: nothing could check that GPU, and
/// a round of the rest must not pass it off as verified. Its trust is its
/// stake's.
fn challengeable(offer: &Offer) -> bool {
    !offer.groups.is_empty()
        && offer.groups.iter().all(|group| group.kind == iog_types::DeviceKind::Cpu || group.kernels)
}

/// A reported coordinate is used for gangs once its own error estimate is
/// at most this: the estimates it gives are then within about half of the
/// true latency, and usually far better (see `iog_sched::vivaldi`).
pub const COORD_ERROR_SETTLED: f64 = 0.5;

/// The store's snapshot does not describe a consistent state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreError {
    TaskOfUnknownJob(TaskId),
    LeasedWithoutHolder(TaskId),
    MissingTask(TaskId),
    /// A chained job's last task made is settled but none of its runs
    /// holds the accepted result the next task is made from.
    ChainWithoutResult(TaskId),
}

impl std::error::Error for RestoreError {}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreError::TaskOfUnknownJob(id) => {
                write!(f, "stored task {id} belongs to no stored job")
            }
            RestoreError::LeasedWithoutHolder(id) => {
                write!(f, "stored task {id} is leased but names no holder")
            }
            RestoreError::MissingTask(id) => write!(f, "stored job lacks its task {id}"),
            RestoreError::ChainWithoutResult(id) => {
                write!(f, "stored chained job's task {id} is settled but no run of it holds the accepted result")
            }
        }
    }
}

#[derive(Debug)]
struct Job {
    state: JobState,
    /// Tasks in its plan; replicas of verification come on top.
    n_tasks: u32,
    /// Tasks whose result is accepted.
    n_settled: u32,
    /// Whether each task's result is accepted.
    settled: Vec<bool>,
    /// How its results are checked.
    verify: Verify,
    /// Replicas of each task created so far; empty for a job that does not
    /// verify (one each).
    replicas: Vec<u8>,
    max_attempts: u32,
    /// Submission order; a submitter's older jobs are served first.
    seq: u64,
    /// The job's requirements, interned in the index.
    class: ClassId,
    /// Devices each task uses.
    devices_per_task: u32,
    submitter: Submitter,
    /// Set for a gang job: the bound on its members' pairwise round trip.
    gang_latency_ms_max: Option<u32>,
    /// Devices a waiting gang holds, and until when.
    reservation: Option<Reservation>,
    /// A gang whose hold timed out tries again from then.
    gang_not_before_ms: UnixMs,
    /// How long one lease of its tasks may last.
    task_timeout_ms: Option<u64>,
    /// Tasks a link of a chained job holds; 0 for a job that is not
    /// chained. A chained job's links run one after another, each link's
    /// tasks made from the accepted results of the link before.
    chain_width: u32,
    /// Tasks made so far: all of them, but for a chained job.
    n_created: u32,
    /// A chained job's accepted outputs of its last link's settled tasks,
    /// by task index: what the next link is made from.
    link_outputs: BTreeMap<u32, iog_types::BlobId>,
}

impl Job {
    fn chained(&self) -> bool {
        self.chain_width > 0
    }

    /// The tasks of the last link made of a chained job.
    fn last_link(&self) -> std::ops::Range<u32> {
        self.n_created.saturating_sub(self.chain_width)..self.n_created
    }

    /// Replicas of task `task_idx` created so far.
    fn n_replicas(&self, task_idx: u32) -> u8 {
        self.replicas.get(task_idx as usize).copied().unwrap_or(1)
    }

    /// Every task and replica of the job that exists.
    fn task_ids(&self, job_id: JobId) -> Vec<TaskId> {
        let mut ids = Vec::with_capacity(self.n_created as usize);
        for task_idx in 0..self.n_created {
            for replica in 0..self.n_replicas(task_idx) {
                ids.push(self.replica_id(job_id, task_idx, replica));
            }
        }
        ids
    }

    fn replica_id(&self, job_id: JobId, task_idx: u32, replica: u8) -> TaskId {
        let index = replica_index(self.n_tasks, task_idx, replica).expect("replica indices are checked at submission");
        TaskId::new(job_id, index)
    }
}

/// Devices a gang job holds while the rest of its gang frees up.
#[derive(Debug)]
struct Reservation {
    entries: Vec<EntryId>,
    deadline_ms: UnixMs,
}

#[derive(Debug)]
struct Task {
    state: TaskState,
    input: iog_types::BlobId,
    attempts: u32,
    token: Option<LeaseToken>,
    holder: Option<WorkerId>,
    not_before_ms: UnixMs,
    output: Option<iog_types::BlobId>,
    /// Heartbeats in a row from the holder that did not list this task.
    unconfirmed_heartbeats: u32,
    /// When the current lease was granted (or restored after a restart): a
    /// result's run time is never taken as longer than its lease has lasted.
    leased_ms: UnixMs,
    /// The index entry whose devices the current lease holds. `None` for a
    /// lease restored after a restart until its holder reconnects.
    placed: Option<EntryId>,
    /// What the current (or last) lease pays per hour for all its devices.
    price_io_per_hour: Amount,
    /// Who committed it, and the run time its commit recorded.
    committed_by: Option<WorkerId>,
    duration_ms: u64,
    /// The model of the devices its lease runs on, or its committed run
    /// ran on, kept only for a job whose replicas must run on one model
    /// (a lease that ends without a result forgets it); stored with its commit
    /// (`Change::TaskCommitted`), so a restart keeps a committed one's.
    model: Option<Box<str>>,
}

/// What the other replicas of a task allow for one of them: not their
/// workers, and where the job asks for it, only their devices' model.
struct Siblings<'a> {
    workers: Vec<&'a WorkerId>,
    model: Option<&'a str>,
}

impl Siblings<'_> {
    fn allow(&self, worker_id: &WorkerId, group: &iog_sched::DeviceGroup) -> bool {
        !self.workers.contains(&worker_id) && self.model.is_none_or(|model| group.model == model)
    }
}

#[derive(Debug)]
struct Worker {
    connected: bool,
    offer: Offer,
    trust: u8,
    /// One index entry per device group of the offer.
    entries: Vec<EntryId>,
    leases: BTreeSet<TaskId>,
    last_heartbeat_ms: UnixMs,
    /// The owner is using the machine; it takes no tasks until it says so.
    paused: bool,
    /// When its availability may next change, as listed in `window_edges`.
    next_edge_ms: Option<UnixMs>,
    /// Last measured round-trip time to the coordinator; 0 until measured.
    rtt_ms: u32,
    /// The network coordinate the worker last reported, if any.
    coord: Option<iog_sched::Coord>,
    /// A hardware challenge is under way: no new tasks meanwhile.
    challenging: bool,
    /// Start of its online time not yet counted toward its reputation.
    online_since_ms: UnixMs,
    /// When its next challenge falls due, as listed in `challenges_due`.
    next_challenge_ms: Option<UnixMs>,
    /// When the challenge round under way started.
    challenge_started_ms: UnixMs,
    /// The round under way, or the last one.
    challenge_round: u64,
    /// The offer lends more memory than the last round started with: the
    /// next round comes as soon as the worker is idle.
    memory_unproven: bool,
}

impl Worker {
    fn unknown(now: UnixMs) -> Worker {
        Worker {
            connected: false,
            offer: Offer::free(Vec::new()),
            trust: 0,
            entries: Vec::new(),
            leases: BTreeSet::new(),
            last_heartbeat_ms: now,
            paused: false,
            next_edge_ms: None,
            rtt_ms: 0,
            coord: None,
            challenging: false,
            online_since_ms: now,
            next_challenge_ms: None,
            challenge_started_ms: now,
            challenge_round: 0,
            memory_unproven: false,
        }
    }
}

/// The coordinator's state machine. See the crate documentation.
#[derive(Debug)]
pub struct Core {
    config: Config,
    jobs: HashMap<JobId, Job>,
    tasks: HashMap<TaskId, Task>,
    workers: HashMap<WorkerId, Worker>,
    queue: TaskQueue,
    /// Free capacity of the connected workers.
    index: Index<WorkerId>,
    /// (time the worker is declared dead, worker).
    deadlines: BTreeSet<(UnixMs, WorkerId)>,
    /// (time a worker's availability window opens or closes, worker).
    window_edges: BTreeSet<(UnixMs, WorkerId)>,
    /// Which gang holds an entry's devices, and when each hold ends.
    /// (entry, gang job holding one task's worth of its devices).
    reserved_by: BTreeSet<(EntryId, JobId)>,
    reservation_deadlines: BTreeSet<(UnixMs, JobId)>,
    /// Hardware challenges of every worker seen since the coordinator started.
    challenges: HashMap<WorkerId, ChallengeRecord>,
    /// Leases of jobs with a task timeout, by when they lapse. Entries are
    /// not removed when a lease ends otherwise; one whose task no longer
    /// holds that token is skipped when it comes due.
    lease_deadlines: BTreeSet<(UnixMs, TaskId, LeaseToken)>,
    /// What every worker seen since the coordinator started has done.
    reputations: HashMap<WorkerId, Reputation>,
    /// Connected workers by when their next challenge falls due.
    challenges_due: BTreeSet<(UnixMs, WorkerId)>,
    /// Runs of spot-checked jobs waiting for their check's report.
    spot: verify::Asks,
    /// Checks to ask for again at the next event (set by a restart, which
    /// loses the shell's checks under way).
    spot_reissue: Vec<TaskId>,
    /// Tasks (by replica 0's id) whose replicas returned different digests,
    /// waiting for the shell to say which agree within the workload's
    /// tolerance.
    compares: verify::Asks,
    /// The outputs each waiting comparison was asked for, in replica order.
    compare_asked: HashMap<TaskId, Vec<iog_types::BlobId>>,
    /// What the shell's comparisons said: the outputs compared and their
    /// classes (see [`verify::by_class`]), until the task settles.
    classes: HashMap<TaskId, (Vec<iog_types::BlobId>, Vec<u8>)>,
    /// Tasks to judge again at the next event (set by a restart, which
    /// loses the comparisons under way).
    compare_reissue: Vec<TaskId>,
    /// Next tasks of chained jobs (by their id) waiting for the shell to
    /// make their input.
    chain: verify::Asks,
    /// What each waiting next link's inputs are made from: the input and
    /// accepted output of each task of the link before.
    chain_asked: HashMap<TaskId, LinkResults>,
    /// Next links to ask for at the next event (set by a restart).
    chain_reissue: Vec<(JobId, u32, LinkResults)>,
    /// Workers a proven-wrong result keeps from new tasks, until when.
    suspended_until: HashMap<WorkerId, UnixMs>,
    suspensions: BTreeSet<(UnixMs, WorkerId)>,
    /// Challenge rounds by when they time out; an entry whose worker is no
    /// longer in that round is skipped when it comes due.
    challenge_deadlines: BTreeSet<(UnixMs, WorkerId)>,
    /// The last challenge round number handed out.
    challenge_rounds: u64,
    /// (end of a gang's wait after its hold timed out, job): the tick at
    /// that time calls for a placement round, or the gang could wait for
    /// an unrelated event forever.
    gang_waits: BTreeSet<(UnixMs, JobId)>,
    next_token: u64,
    next_job_seq: u64,
    /// Something happened since the last placement round that may let a
    /// task be placed (a task became ready, a device freed or appeared).
    placement_due: bool,
}

impl Core {
    /// An empty coordinator.
    pub fn new(config: Config) -> Core {
        Core {
            index: Index::new(config.rank),
            config,
            jobs: HashMap::new(),
            tasks: HashMap::new(),
            workers: HashMap::new(),
            queue: TaskQueue::default(),
            deadlines: BTreeSet::new(),
            window_edges: BTreeSet::new(),
            reserved_by: BTreeSet::new(),
            reservation_deadlines: BTreeSet::new(),
            challenges: HashMap::new(),
            challenges_due: BTreeSet::new(),
            challenge_deadlines: BTreeSet::new(),
            challenge_rounds: 0,
            spot: verify::Asks::default(),
            spot_reissue: Vec::new(),
            compares: verify::Asks::default(),
            compare_asked: HashMap::new(),
            classes: HashMap::new(),
            compare_reissue: Vec::new(),
            chain: verify::Asks::default(),
            chain_asked: HashMap::new(),
            chain_reissue: Vec::new(),
            suspended_until: HashMap::new(),
            suspensions: BTreeSet::new(),
            reputations: HashMap::new(),
            lease_deadlines: BTreeSet::new(),
            gang_waits: BTreeSet::new(),
            next_token: 1,
            next_job_seq: 0,
            placement_due: false,
        }
    }

    /// Rebuilds the coordinator from its store after a restart at time `now`.
    ///
    /// Leases survive: their holders get one worker timeout from `now` to
    /// reconnect and say they still run the task; otherwise the lease lapses.
    pub fn restore(config: Config, snapshot: Snapshot, now: UnixMs) -> Result<Core, RestoreError> {
        let mut core = Core::new(config);
        let mut jobs = snapshot.jobs;
        jobs.sort_by_key(|job| (job.created_ms, job.job_id));
        for job in jobs {
            let seq = core.next_job_seq;
            core.next_job_seq += 1;
            let class = core.index.class(&job.requirements);
            core.jobs.insert(
                job.job_id,
                Job {
                    state: job.state,
                    n_tasks: job.n_tasks,
                    n_settled: 0,
                    settled: vec![false; job.n_tasks as usize],
                    verify: job.verify,
                    replicas: if job.verify == Verify::None { Vec::new() } else { vec![1; job.n_tasks as usize] },
                    max_attempts: job.max_attempts,
                    seq,
                    class,
                    devices_per_task: job.requirements.count,
                    submitter: Submitter::from(job.submitter.as_str()),
                    gang_latency_ms_max: job.requirements.gang_latency_ms_max,
                    task_timeout_ms: job.task_timeout_ms,
                    reservation: None,
                    gang_not_before_ms: 0,
                    chain_width: job.chain_width,
                    // A chained job's tasks are counted as they are restored.
                    n_created: if job.chain_width > 0 { 0 } else { job.n_tasks },
                    link_outputs: BTreeMap::new(),
                },
            );
        }
        for (worker_id, record) in snapshot.workers {
            core.challenges.insert(worker_id.clone(), record.challenges);
            core.reputations.insert(worker_id, record.reputation);
        }
        let timeout_ms = core.config.worker_timeout_ms();
        let mut spot_waiting = Vec::new();
        // Each settled task's input and accepted result, for chained jobs.
        let mut accepted_results = HashMap::new();
        for restored in snapshot.tasks {
            if let Some(output) = restored.accepted {
                accepted_results.insert(restored.task_id, (restored.input, output));
            }
            let task_id = restored.task_id;
            let job = core.jobs.get_mut(&task_id.job_id).ok_or(RestoreError::TaskOfUnknownJob(task_id))?;
            let (task_idx, replica) = replica_of(job.n_tasks, task_id.task_idx);
            if task_idx >= job.n_tasks || replica >= job.verify.replicas_max() {
                return Err(RestoreError::TaskOfUnknownJob(task_id));
            }
            if let Some(n) = job.replicas.get_mut(task_idx as usize) {
                *n = (*n).max(replica + 1);
            }
            if job.chained() {
                job.n_created = job.n_created.max(task_idx + 1);
            }
            if replica == 0 && restored.accepted.is_some() {
                job.settled[task_idx as usize] = true;
                job.n_settled += 1;
            }
            // A spot-checked run committed without a verdict was waiting
            // for its check, which the restart lost.
            if matches!(job.verify, Verify::Spot { .. })
                && restored.state == TaskState::Committed
                && restored.verdict.is_none()
            {
                spot_waiting.push(task_id);
            }
            let (seq, submitter) = (job.seq, job.submitter.clone());
            if let Some(token) = restored.token {
                core.next_token = core.next_token.max(token.0 + 1);
            }
            match restored.state {
                TaskState::Queued => {
                    core.queue.push(seq, &submitter, job.n_tasks, task_id, restored.not_before_ms, now)
                }
                TaskState::Leased => {
                    let holder = restored.holder.clone().ok_or(RestoreError::LeasedWithoutHolder(task_id))?;
                    let worker = core.workers.entry(holder.clone()).or_insert_with(|| Worker::unknown(now));
                    worker.leases.insert(task_id);
                    core.queue.add_use(&submitter, job.devices_per_task);
                    core.deadlines.insert((now + timeout_ms, holder));
                    // A restored lease's clock restarts: the store does not
                    // keep when it was granted.
                    if let (Some(task_timeout_ms), Some(token)) =
                        (core.config.task_timeout_ms(job.task_timeout_ms), restored.token)
                    {
                        core.lease_deadlines.insert((now + task_timeout_ms, task_id, token));
                    }
                }
                TaskState::Committed | TaskState::Failed | TaskState::Cancelled => {}
            }
            core.tasks.insert(
                task_id,
                Task {
                    state: restored.state,
                    input: restored.input,
                    attempts: restored.attempts,
                    token: restored.token,
                    holder: if restored.state == TaskState::Leased { restored.holder } else { None },
                    not_before_ms: restored.not_before_ms,
                    output: restored.output,
                    unconfirmed_heartbeats: 0,
                    leased_ms: now,
                    placed: None,
                    price_io_per_hour: restored.price_io_per_hour,
                    committed_by: restored.committed_by,
                    duration_ms: restored.duration_ms,
                    model: restored.model.map(Into::into),
                },
            );
        }
        core.placement_due = true;
        for (job_id, job) in &core.jobs {
            if job.n_created == 0 {
                return Err(RestoreError::MissingTask(TaskId::new(*job_id, 0)));
            }
            for task_id in job.task_ids(*job_id) {
                if !core.tasks.contains_key(&task_id) {
                    return Err(RestoreError::MissingTask(task_id));
                }
            }
        }
        core.spot_reissue = spot_waiting;
        // A chained job's last link's accepted outputs are what its next
        // link is made from; one whose last link is settled was waiting for
        // the shell to make the next link's inputs, which the restart lost.
        for (job_id, job) in core.jobs.iter_mut() {
            if !job.chained() || job.state != JobState::Running || job.n_created == 0 {
                continue;
            }
            if job.n_created % job.chain_width != 0 {
                return Err(RestoreError::MissingTask(TaskId::new(*job_id, job.n_created)));
            }
            let mut previous = Vec::new();
            for task_idx in job.last_link() {
                if !job.settled[task_idx as usize] {
                    continue;
                }
                // The store keeps the accepted result on the task's row
                // (replica 0's), whichever replica's it was.
                let accepted = accepted_results.get(&job.replica_id(*job_id, task_idx, 0)).copied();
                let Some((input, output)) = accepted else {
                    return Err(RestoreError::ChainWithoutResult(TaskId::new(*job_id, task_idx)));
                };
                job.link_outputs.insert(task_idx, output);
                previous.push((input, output));
            }
            if job.n_created < job.n_tasks && previous.len() == job.chain_width as usize {
                core.chain_reissue.push((*job_id, job.n_created, previous));
            }
        }
        // A replicated task whose runs have all committed but that is not
        // settled was waiting for the shell's comparison of their outputs,
        // which the restart lost: it is judged again.
        for (job_id, job) in &core.jobs {
            if matches!(job.verify, Verify::Spot { .. } | Verify::None) || job.state != JobState::Running {
                continue;
            }
            for task_idx in 0..job.n_tasks {
                if job.settled[task_idx as usize] {
                    continue;
                }
                let replica_ids: Vec<TaskId> =
                    (0..job.n_replicas(task_idx)).map(|r| job.replica_id(*job_id, task_idx, r)).collect();
                if replica_ids
                    .iter()
                    .all(|id| core.tasks.get(id).is_some_and(|task| task.state == TaskState::Committed))
                {
                    core.compare_reissue.push(replica_ids[0]);
                }
            }
        }
        Ok(core)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Applies one event at time `now` and returns what the shell must do.
    pub fn handle(&mut self, event: Event, now: UnixMs) -> Vec<Action> {
        let mut out = Vec::new();
        for task_id in std::mem::take(&mut self.spot_reissue) {
            self.ask_spot_check(task_id, now, &mut out);
        }
        for replica_id in std::mem::take(&mut self.compare_reissue) {
            self.verify_task(replica_id, now, &mut out);
        }
        for (job_id, task_idx, previous) in std::mem::take(&mut self.chain_reissue) {
            self.ask_chain_input(job_id, task_idx, previous, now, &mut out);
        }
        match event {
            Event::WorkerConnected { worker_id, offer, trust, running } => {
                self.on_connected(worker_id, offer, trust, &running, now, &mut out)
            }
            Event::OfferChanged { worker_id, offer } => {
                if let Some(worker) = self.workers.get(&worker_id).filter(|worker| worker.connected) {
                    // Memory lent is proven by the memory challenge: an
                    // offer that lends more is challenged now if the
                    // worker is idle (before anything is placed on the new
                    // amount), else as soon as it is, not at the next
                    // routine round.
                    let raised = offer.cpu_memory_bytes() > worker.offer.cpu_memory_bytes();
                    let trust = worker.trust;
                    self.set_offer(&worker_id, offer, trust, now);
                    if raised && self.config.challenge_interval_ms > 0 && challengeable(&self.workers[&worker_id].offer)
                    {
                        self.workers.get_mut(&worker_id).expect("checked above").memory_unproven = true;
                        self.refresh_available(&worker_id, now);
                        self.set_challenge_due(&worker_id, Some(now));
                        self.start_due_challenges(now, &mut out);
                    }
                }
            }
            Event::WorkerPaused { worker_id, paused, reason } => {
                self.on_paused(&worker_id, paused, &reason, now, &mut out)
            }
            Event::WorkerRtt { worker_id, rtt_ms } => self.on_rtt(&worker_id, rtt_ms),
            Event::ChallengeChecked { worker_id, round, passed, detail } => {
                let current = self.workers.get(&worker_id).is_some_and(|w| w.challenging && w.challenge_round == round);
                if current || round == 0 {
                    self.on_challenge(&worker_id, passed, &detail, now, &mut out)
                }
            }
            Event::WorkerCoord { worker_id, coord } => {
                if let Some(worker) = self.workers.get_mut(&worker_id)
                    && coord.is_sane()
                {
                    worker.coord = Some(coord);
                    // A gang holding devices may now fit with this worker.
                    if !self.reservation_deadlines.is_empty() {
                        self.placement_due = true;
                    }
                }
            }
            Event::Heartbeat { worker_id, held } => {
                self.on_heartbeat(&worker_id, now);
                self.credit_uptime(&worker_id, now, &mut out);
                self.reconcile(&worker_id, &held, now, &mut out);
            }
            Event::WorkerDisconnected { worker_id } => {
                if let Some(worker) = self.workers.get_mut(&worker_id) {
                    worker.connected = false;
                }
                self.refresh_available(&worker_id, now);
            }
            Event::JobSubmitted(job) => self.on_submitted(job, now, &mut out),
            Event::TaskSucceeded { worker_id, task_id, token, output, duration_ms, device } => {
                self.on_succeeded(worker_id, task_id, token, output, duration_ms, device, now, &mut out)
            }
            Event::SpotChecked { task_id, passed, detail } => {
                self.on_spot_checked(task_id, passed, &detail, now, &mut out)
            }
            Event::OutputsCompared { task_id, outputs, classes } => {
                self.on_outputs_compared(task_id, outputs, classes, now, &mut out)
            }
            Event::ChainInputReady { job_id, task_idx, inputs } => {
                self.on_chain_input(job_id, task_idx, Ok(inputs), now, &mut out)
            }
            Event::ChainInputFailed { job_id, task_idx, reason } => {
                self.on_chain_input(job_id, task_idx, Err(reason), now, &mut out)
            }
            Event::TaskFailed { worker_id, task_id, token, error } => {
                if self.holds_current_lease(&worker_id, task_id, token) {
                    self.record_outcome(&worker_id, |r| r.tasks_failed += 1, &mut out);
                    self.release_lease(task_id);
                    self.retry_or_fail(task_id, error, now, &mut out);
                }
            }
            Event::KeyNotGiven { worker_id, task_id, token, waited_ms } => {
                if self.holds_current_lease(&worker_id, task_id, token) {
                    let error = format!(
                        "the submitter handed out no task key within {} s; a sealed job \
                         needs its submitter's client online (`iog job watch`) to hand out keys",
                        waited_ms / 1000
                    );
                    self.release_lease(task_id);
                    out.push(Action::Revoke { worker_id: worker_id.clone(), task_id, token, reason: error.clone() });
                    self.retry_or_fail(task_id, error, now, &mut out);
                }
            }
            Event::CancelJob { job_id } => {
                if self.jobs.get(&job_id).is_some_and(|job| job.state == JobState::Running) {
                    let reason = "cancelled by its submitter".to_owned();
                    self.end_job(job_id, JobState::Cancelled, Some(reason), now, &mut out);
                }
            }
            Event::FailJob { job_id, reason } => {
                if self.jobs.get(&job_id).is_some_and(|job| job.state == JobState::Running) {
                    self.end_job(job_id, JobState::Failed, Some(reason), now, &mut out);
                }
            }
            Event::Tick => {
                self.lapse_overdue_leases(now, &mut out);
                self.time_out_challenges(now, &mut out);
                self.retry_spot_checks(now, &mut out);
                self.retry_compares(now, &mut out);
                self.retry_chain_inputs(now, &mut out);
                self.end_suspensions(now);
                self.on_tick(now, &mut out);
                self.start_due_challenges(now, &mut out);
            }
        }
        let jobs = &self.jobs;
        let released = self.queue.release_due(now, |job_id| (jobs[&job_id].submitter.clone(), jobs[&job_id].n_tasks));
        if released > 0 {
            self.placement_due = true;
        }
        if self.placement_due {
            self.placement_due = false;
            self.place(now, &mut out);
        }
        out
    }

    fn on_connected(
        &mut self,
        worker_id: WorkerId,
        offer: Offer,
        trust: u8,
        running: &[RunningTask],
        now: UnixMs,
        out: &mut Vec<Action>,
    ) {
        let worker = self.workers.entry(worker_id.clone()).or_insert_with(|| Worker::unknown(now));
        if !worker.connected {
            worker.online_since_ms = now;
        }
        worker.connected = true;
        // A new session starts with the owner's machine free; a worker
        // whose owner is still busy says so right after its hello.
        worker.paused = false;
        // Leases the worker no longer knows about were lost with its previous
        // process; they lapse now rather than at the heartbeat deadline.
        let lost: Vec<TaskId> = worker
            .leases
            .iter()
            .copied()
            .filter(|task_id| {
                let token = self.tasks.get(task_id).and_then(|task| task.token);
                !running.iter().any(|run| run.task_id == *task_id && Some(run.token) == token)
            })
            .collect();
        for task_id in lost {
            // An earlier lost task may have failed the job, cancelling this one.
            if !self.is_leased_to(task_id, &worker_id) {
                continue;
            }
            self.release_lease(task_id);
            let error = format!("worker {} restarted and lost the task", worker_id.short());
            self.retry_or_fail(task_id, error, now, out);
        }
        self.revoke_stale(&worker_id, running, out);
        self.on_heartbeat(&worker_id, now);
        // Every session starts with a challenge; until it is checked the
        // worker takes no new tasks (they would slow the challenge).
        self.set_challenge_due(&worker_id, None);
        let worker = self.workers.get_mut(&worker_id).expect("inserted above");
        worker.challenging = self.config.challenge_interval_ms > 0 && challengeable(&offer);
        if worker.challenging {
            self.challenge_rounds += 1;
            worker.challenge_round = self.challenge_rounds;
            worker.memory_unproven = false;
            worker.challenge_started_ms = now;
            self.challenge_deadlines.insert((now + self.config.challenge_timeout_ms, worker_id.clone()));
            out.push(Action::Challenge { worker_id: worker_id.clone(), round: self.challenge_rounds });
        }
        self.set_offer(&worker_id, offer, trust, now);
    }

    /// Ends the leases that ran past their job's task timeout: the holder is
    /// told to stop, the lapse counts as an attempt and against the
    /// holder's reputation, and the task is tried again elsewhere.
    fn lapse_overdue_leases(&mut self, now: UnixMs, out: &mut Vec<Action>) {
        while let Some(&(due_ms, task_id, token)) = self.lease_deadlines.first() {
            if due_ms > now {
                break;
            }
            self.lease_deadlines.pop_first();
            let Some(task) = self.tasks.get(&task_id) else { continue };
            if task.state != TaskState::Leased || task.token != Some(token) {
                continue;
            }
            let Some(holder) = task.holder.clone() else { continue };
            let reason = match self.jobs[&task_id.job_id].task_timeout_ms {
                Some(own) => format!("ran past its job's task_timeout_ms of {own} on worker {}", holder.short()),
                None => format!(
                    "ran past the network's default task timeout of {} ms on worker {} (a job sets its own with \
                     [job] task_timeout_ms)",
                    self.config.task_timeout_default_ms,
                    holder.short()
                ),
            };
            out.push(Action::Revoke { worker_id: holder.clone(), task_id, token, reason: reason.clone() });
            self.record_outcome(&holder, |r| r.leases_lapsed += 1, out);
            self.release_lease(task_id);
            self.retry_or_fail(task_id, reason, now, out);
        }
    }

    /// Lists (or with `None` unlists) when the worker's next challenge is due.
    fn set_challenge_due(&mut self, worker_id: &WorkerId, due_ms: Option<UnixMs>) {
        let Some(worker) = self.workers.get_mut(worker_id) else { return };
        if let Some(old) = worker.next_challenge_ms.take() {
            self.challenges_due.remove(&(old, worker_id.clone()));
        }
        if let Some(due_ms) = due_ms {
            worker.next_challenge_ms = Some(due_ms);
            self.challenges_due.insert((due_ms, worker_id.clone()));
        }
    }

    /// The wait before a worker's next routine challenge: between half and
    /// one and a half intervals, drawn from its id and how many it took.
    fn challenge_wait_ms(&self, worker_id: &WorkerId) -> u64 {
        let interval_ms = self.config.challenge_interval_ms;
        let taken = self.challenges.get(worker_id).map_or(0, |r| r.passed + r.failed);
        let mut hasher = blake3::Hasher::new();
        hasher.update(worker_id.0.as_bytes());
        hasher.update(&taken.to_le_bytes());
        let draw = u64::from_le_bytes(hasher.finalize().as_bytes()[..8].try_into().expect("eight bytes"));
        interval_ms / 2 + draw % interval_ms.max(1)
    }

    /// Starts the challenges that fell due, on workers that run no tasks;
    /// a busy one is asked again a retry later, or, when it lends memory no
    /// round has proven, at the first tick it runs none (it takes no new
    /// task meanwhile, so it drains).
    fn start_due_challenges(&mut self, now: UnixMs, out: &mut Vec<Action>) {
        while let Some((due_ms, worker_id)) = self.challenges_due.first().cloned() {
            if due_ms > now {
                break;
            }
            self.set_challenge_due(&worker_id, None);
            let Some(worker) = self.workers.get_mut(&worker_id) else { continue };
            if !worker.connected || worker.challenging || !challengeable(&worker.offer) {
                continue;
            }
            if !worker.leases.is_empty() || worker.paused {
                let retry_ms = if worker.memory_unproven { now + 1 } else { now + self.config.challenge_retry_ms };
                self.set_challenge_due(&worker_id, Some(retry_ms));
                continue;
            }
            worker.challenging = true;
            self.challenge_rounds += 1;
            worker.challenge_round = self.challenge_rounds;
            worker.memory_unproven = false;
            worker.challenge_started_ms = now;
            self.challenge_deadlines.insert((now + self.config.challenge_timeout_ms, worker_id.clone()));
            out.push(Action::Challenge { worker_id: worker_id.clone(), round: self.challenge_rounds });
            self.refresh_available(&worker_id, now);
        }
    }

    /// Keeps a worker proven wrong from new tasks for
    /// `wrong_result_suspend_ms` (its running tasks go on; their results are
    /// checked like any other).
    fn suspend(&mut self, worker_id: &WorkerId, now: UnixMs) {
        let until_ms = now.saturating_add(self.config.wrong_result_suspend_ms);
        if let Some(old) = self.suspended_until.insert(worker_id.clone(), until_ms) {
            self.suspensions.remove(&(old, worker_id.clone()));
        }
        self.suspensions.insert((until_ms, worker_id.clone()));
        self.refresh_available(worker_id, now);
    }

    /// Lifts the suspensions that ended by `now`.
    fn end_suspensions(&mut self, now: UnixMs) {
        while let Some((until_ms, worker_id)) = self.suspensions.first().cloned() {
            if until_ms > now {
                break;
            }
            self.suspensions.pop_first();
            self.suspended_until.remove(&worker_id);
            self.refresh_available(&worker_id, now);
        }
    }

    /// Fails the challenge rounds that ran past `challenge_timeout_ms`
    /// without being reported checked.
    fn time_out_challenges(&mut self, now: UnixMs, out: &mut Vec<Action>) {
        while let Some((deadline_ms, worker_id)) = self.challenge_deadlines.first().cloned() {
            if deadline_ms > now {
                break;
            }
            self.challenge_deadlines.pop_first();
            let timeout_ms = self.config.challenge_timeout_ms;
            let in_round = self.workers.get(&worker_id).is_some_and(|worker| {
                worker.challenging && worker.challenge_started_ms.saturating_add(timeout_ms) == deadline_ms
            });
            if in_round {
                let detail = format!("no answer was checked within challenge_timeout_ms of {timeout_ms}");
                self.on_challenge(&worker_id, false, &detail, now, out);
            }
        }
    }

    /// Replaces a worker's index entries by ones for `offer`, and charges
    /// the devices of the leases it holds to the new entries.
    fn set_offer(&mut self, worker_id: &WorkerId, mut offer: Offer, trust: u8, now: UnixMs) {
        for group in &mut offer.groups {
            group.count = group.count.min(self.config.slots_per_worker_max);
        }
        let worker = self.workers.get_mut(worker_id).expect("the caller checked the worker");
        let old_entries = std::mem::take(&mut worker.entries);
        let leases: Vec<TaskId> = worker.leases.iter().copied().collect();
        for task_id in &leases {
            if let Some(task) = self.tasks.get_mut(task_id) {
                task.placed = None;
            }
        }
        self.drop_reservations_on(&old_entries, false);
        for entry in old_entries {
            self.index.remove(entry);
        }
        let rtt_ms = self.workers[worker_id].rtt_ms;
        let terms = EntryTerms {
            region: offer.region.clone(),
            price_io_per_device_hour: offer.price_io_per_device_hour,
            trust: self.trust_with(worker_id, trust, &offer),
            reputation_milli: self.reputation_milli(worker_id),
            rtt_ms,
            software: offer.software_names(),
        };
        let entries: Vec<EntryId> = offer
            .groups
            .iter()
            .filter(|group| group.count > 0)
            .map(|group| self.index.insert(worker_id.clone(), group.clone(), terms.clone(), 0, false))
            .collect();
        // Leases carried over take the first group that fits their job and
        // has room; one that fits nowhere (the offer shrank) runs on, unplaced.
        for task_id in leases {
            let Some(job) = self.jobs.get(&task_id.job_id) else { continue };
            let Some(requirements) = self.index.requirements(job.class) else { continue };
            let count = job.devices_per_task;
            let fitting = entries.iter().copied().find(|&entry| {
                let view = self.index.get(entry).expect("just inserted");
                requirements.fits_device(view.group) && view.group.count.saturating_sub(view.used) >= count
            });
            if let Some(entry) = fitting {
                // A lease restored after a restart has no model noted yet.
                let model = self.lease_model(task_id.job_id, entry);
                self.index.take(entry, count);
                let task = self.tasks.get_mut(&task_id).expect("a lease's task exists");
                task.placed = Some(entry);
                if task.model.is_none() {
                    task.model = model;
                }
            }
        }
        let worker = self.workers.get_mut(worker_id).expect("the caller checked the worker");
        worker.offer = offer;
        worker.trust = trust;
        worker.entries = entries;
        self.refresh_available(worker_id, now);
        self.placement_due = true;
    }

    /// A new round-trip time re-ranks the worker's entries.
    fn on_rtt(&mut self, worker_id: &WorkerId, rtt_ms: u32) {
        let Some(worker) = self.workers.get_mut(worker_id) else { return };
        let rtt_ms = rtt_ms.min(RTT_MS_MAX);
        if worker.rtt_ms == rtt_ms {
            return;
        }
        worker.rtt_ms = rtt_ms;
        self.refresh_terms(worker_id);
    }

    /// Puts the worker's current terms (price, region, trust, round trip)
    /// on its index entries, which re-ranks them.
    fn refresh_terms(&mut self, worker_id: &WorkerId) {
        let Some(worker) = self.workers.get(worker_id) else { return };
        let terms = EntryTerms {
            region: worker.offer.region.clone(),
            price_io_per_device_hour: worker.offer.price_io_per_device_hour,
            trust: self.trust_with(worker_id, worker.trust, &worker.offer),
            reputation_milli: self.reputation_milli(worker_id),
            rtt_ms: worker.rtt_ms,
            software: worker.offer.software_names(),
        };
        for entry in worker.entries.clone() {
            self.index.set_terms(entry, terms.clone());
        }
    }

    /// The worker's reputation score as placement ranks by it (neutral, 500,
    /// for one without a record), rounded down to a step of
    /// [`REPUTATION_RANK_STEP_MILLI`], so that a commit re-ranks the worker
    /// only when its score crossed a step rather than at nearly every one.
    fn reputation_milli(&self, worker_id: &WorkerId) -> u16 {
        self.reputation_of(worker_id).score_milli() / REPUTATION_RANK_STEP_MILLI * REPUTATION_RANK_STEP_MILLI
    }

    /// The worker's outcomes, its challenge counts taken from its challenge
    /// record (which alone counts them).
    fn reputation_of(&self, worker_id: &WorkerId) -> Reputation {
        let challenges = self.challenges.get(worker_id).copied().unwrap_or_default();
        Reputation {
            challenges_passed: u64::from(challenges.passed),
            challenges_failed: u64::from(challenges.failed),
            ..self.reputations.get(worker_id).copied().unwrap_or_default()
        }
    }

    /// Counts an outcome of the worker's, makes it durable, and re-ranks the
    /// worker if its score moved.
    fn record_outcome(&mut self, worker_id: &WorkerId, count: impl FnOnce(&mut Reputation), out: &mut Vec<Action>) {
        let before = self.reputation_milli(worker_id);
        count(self.reputations.entry(worker_id.clone()).or_default());
        if self.reputation_milli(worker_id) != before {
            self.refresh_terms(worker_id);
        }
        self.persist_record(worker_id, out);
    }

    /// Writes the worker's record of conduct as it is now.
    fn persist_record(&self, worker_id: &WorkerId, out: &mut Vec<Action>) {
        let record = WorkerRecord {
            challenges: self.challenges.get(worker_id).copied().unwrap_or_default(),
            reputation: self.reputation_of(worker_id),
        };
        out.push(Action::Persist(Change::WorkerRecorded { worker_id: worker_id.clone(), record }));
    }

    /// The trust level placement sees: what the shell granted (`base`:
    /// 1 for covering stake) plus one while the worker's hardware is
    /// verified by its latest challenge and its `offer` is one a round
    /// checks (a round passed before it lent GPUs without kernels says
    /// nothing of them).
    fn trust_with(&self, worker_id: &WorkerId, base: u8, offer: &Offer) -> u8 {
        let verified = challengeable(offer) && self.challenges.get(worker_id).is_some_and(ChallengeRecord::verified);
        base.saturating_add(u8::from(verified)).min(iog_sched::request::TRUST_LEVEL_MAX)
    }

    /// A hardware challenge was checked. See [`Event::ChallengeChecked`].
    fn on_challenge(&mut self, worker_id: &WorkerId, passed: bool, detail: &str, now: UnixMs, out: &mut Vec<Action>) {
        if !self.workers.contains_key(worker_id) {
            return;
        }
        let record = self.challenges.entry(worker_id.clone()).or_default();
        if passed {
            record.passed += 1;
            record.failed_in_row = 0;
        } else {
            record.failed += 1;
            record.failed_in_row += 1;
            let every = self.config.challenge_failures_slash;
            if every > 0 && record.failed_in_row.is_multiple_of(every) {
                out.push(Action::SlashStake {
                    worker_id: worker_id.clone(),
                    bps: self.config.challenge_slash_bps,
                    reason_key: format!("challenges failed {worker_id} {}: {detail}", record.failed),
                });
            }
        }
        let unproven = self.workers.get(worker_id).is_some_and(|worker| worker.memory_unproven);
        let wait_ms = match (passed, unproven) {
            // The offer was raised during the round, which proved the old amount.
            (true, true) => 0,
            (true, false) => self.challenge_wait_ms(worker_id),
            (false, _) => self.config.challenge_retry_ms,
        };
        let connected = self.workers.get_mut(worker_id).is_some_and(|worker| {
            worker.challenging = false;
            worker.connected
        });
        if connected && self.config.challenge_interval_ms > 0 {
            self.set_challenge_due(worker_id, Some(now + wait_ms));
        }
        self.persist_record(worker_id, out);
        self.refresh_terms(worker_id);
        self.refresh_available(worker_id, now);
    }

    /// The owner started or stopped using the machine. While paused the
    /// worker takes no tasks; the tasks it held are stopped by the worker
    /// and go back to the queue at once, their attempt not counted, so the
    /// submitter loses nothing but the time (and pays only for committed work).
    fn on_paused(&mut self, worker_id: &WorkerId, paused: bool, reason: &str, now: UnixMs, out: &mut Vec<Action>) {
        let Some(worker) = self.workers.get_mut(worker_id) else { return };
        if !worker.connected || worker.paused == paused {
            return;
        }
        worker.paused = paused;
        if paused {
            let leases: Vec<TaskId> = worker.leases.iter().copied().collect();
            let entries = worker.entries.clone();
            self.drop_reservations_on(&entries, true);
            let why = format!("the owner of worker {} is using it: {reason}", worker_id.short());
            let mut gangs = BTreeSet::new();
            for task_id in leases {
                self.yield_task(task_id, &why, now, out);
                gangs.insert(task_id.job_id);
            }
            for job_id in gangs {
                self.break_gang(job_id, now, out);
            }
        }
        self.refresh_available(worker_id, now);
        self.placement_due = true;
    }

    fn on_heartbeat(&mut self, worker_id: &WorkerId, now: UnixMs) {
        let timeout_ms = self.config.worker_timeout_ms();
        let Some(worker) = self.workers.get_mut(worker_id) else {
            return;
        };
        self.deadlines.remove(&(worker.last_heartbeat_ms + timeout_ms, worker_id.clone()));
        worker.last_heartbeat_ms = worker.last_heartbeat_ms.max(now);
        self.deadlines.insert((worker.last_heartbeat_ms + timeout_ms, worker_id.clone()));
    }

    /// Counts the whole hours a connected worker has been online since it
    /// was last credited toward its reputation.
    fn credit_uptime(&mut self, worker_id: &WorkerId, now: UnixMs, out: &mut Vec<Action>) {
        const HOUR_MS: u64 = 3_600_000;
        let Some(worker) = self.workers.get_mut(worker_id) else { return };
        let hours = now.saturating_sub(worker.online_since_ms) / HOUR_MS;
        if !worker.connected || hours == 0 {
            return;
        }
        worker.online_since_ms += hours * HOUR_MS;
        self.record_outcome(worker_id, |r| r.online_hours += hours, out);
    }

    /// Compares what a worker says it holds with the leases it has: leases it
    /// keeps failing to mention lapse, tasks it holds without a current lease
    /// are revoked.
    fn reconcile(&mut self, worker_id: &WorkerId, held: &[RunningTask], now: UnixMs, out: &mut Vec<Action>) {
        let Some(worker) = self.workers.get(worker_id) else { return };
        let leases: Vec<TaskId> = worker.leases.iter().copied().collect();
        let max = self.config.unconfirmed_heartbeats_max.max(1);
        for task_id in leases {
            if !self.is_leased_to(task_id, worker_id) {
                continue;
            }
            let task = self.tasks.get_mut(&task_id).expect("a lease's task exists");
            if held.iter().any(|h| h.task_id == task_id && Some(h.token) == task.token) {
                task.unconfirmed_heartbeats = 0;
                continue;
            }
            task.unconfirmed_heartbeats += 1;
            if task.unconfirmed_heartbeats >= max {
                self.record_outcome(worker_id, |r| r.leases_lapsed += 1, out);
                self.release_lease(task_id);
                let error = format!("worker {} does not hold the task it was given", worker_id.short());
                self.retry_or_fail(task_id, error, now, out);
            }
        }
        self.revoke_stale(worker_id, held, out);
    }

    /// Tells a worker to drop every task it holds without a current lease.
    fn revoke_stale(&self, worker_id: &WorkerId, held: &[RunningTask], out: &mut Vec<Action>) {
        for run in held {
            if !self.holds_current_lease(worker_id, run.task_id, run.token) {
                out.push(Action::Revoke {
                    worker_id: worker_id.clone(),
                    task_id: run.task_id,
                    token: run.token,
                    reason: "the lease is no longer current".to_owned(),
                });
            }
        }
    }

    fn on_submitted(&mut self, job: NewJob, now: UnixMs, out: &mut Vec<Action>) {
        let job_id = job.job_id;
        let max_attempts = job.max_attempts.unwrap_or(self.config.max_attempts_default);
        let reject = |reason: String| Action::JobRejected { job_id, reason };
        if self.jobs.contains_key(&job_id) {
            out.push(reject(format!("job id {job_id} is already taken")));
            return;
        }
        if job.inputs.is_empty() || job.chain == Some(0) {
            out.push(reject("a job needs at least one task".to_owned()));
            return;
        }
        if job.chain.is_some_and(|n| n > CHAIN_TASKS_MAX) {
            out.push(reject(format!("a chained job has at most {CHAIN_TASKS_MAX} tasks")));
            return;
        }
        if let Some(n) = job.chain
            && (job.inputs.len() > CHAIN_WIDTH_MAX as usize || !(n as usize).is_multiple_of(job.inputs.len()))
        {
            let width = job.inputs.len();
            out.push(reject(format!(
                "a chained job gives the inputs of its first link (at most {CHAIN_WIDTH_MAX} tasks), and its {n} \
                 tasks make whole links of that many; it gives {width}"
            )));
            return;
        }
        if job.chain.is_some() && job.sealed {
            out.push(reject(
                "a chained job cannot be sealed: the coordinator makes each task's input from the last one's result"
                    .to_owned(),
            ));
            return;
        }
        if job.chain.is_some() && job.requirements.gang_latency_ms_max.is_some() {
            out.push(reject("a chained job runs one link at a time, so it cannot be a gang".to_owned()));
            return;
        }
        let Ok(n_tasks) = u32::try_from(job.inputs.len()) else {
            out.push(reject(format!("a job has at most {} tasks", u32::MAX)));
            return;
        };
        let n_created = n_tasks;
        let n_tasks = job.chain.unwrap_or(n_tasks);
        if max_attempts == 0 || max_attempts > self.config.max_attempts_limit {
            let limit = self.config.max_attempts_limit;
            out.push(reject(format!("job.max_attempts must be between 1 and {limit}, got {max_attempts}")));
            return;
        }
        if let Err(err) = job.requirements.validate() {
            out.push(reject(err.to_string()));
            return;
        }
        if job.requirements.gang_latency_ms_max.is_some() && job.inputs.len() > iog_sched::request::GANG_SIZE_MAX {
            let max = iog_sched::request::GANG_SIZE_MAX;
            out.push(reject(format!("a gang job has at most {max} tasks (one per worker), got {n_tasks}")));
            return;
        }
        if let Err(err) = job.verify.validate() {
            out.push(reject(err));
            return;
        }
        if job.verify != Verify::None && job.requirements.gang_latency_ms_max.is_some() {
            out.push(reject(
                "a gang job cannot verify its results by replication yet; set verify.policy = \"none\"".to_owned(),
            ));
            return;
        }
        if replica_index(n_tasks, n_tasks - 1, job.verify.replicas_max() - 1).is_none() {
            let max = job.verify.replicas_max();
            out.push(reject(format!("{n_tasks} tasks with up to {max} replicas each are too many to number")));
            return;
        }
        let seq = self.next_job_seq;
        self.next_job_seq += 1;
        let class = self.index.class(&job.requirements);
        let submitter = Submitter::from(job.submitter.as_str());
        let first = job.verify.replicas_first();
        self.jobs.insert(
            job_id,
            Job {
                state: JobState::Running,
                n_tasks,
                n_settled: 0,
                settled: vec![false; n_tasks as usize],
                verify: job.verify,
                replicas: if job.verify == Verify::None { Vec::new() } else { vec![first; n_tasks as usize] },
                max_attempts,
                seq,
                class,
                devices_per_task: job.requirements.count,
                submitter: submitter.clone(),
                gang_latency_ms_max: job.requirements.gang_latency_ms_max,
                task_timeout_ms: job.task_timeout_ms,
                reservation: None,
                gang_not_before_ms: 0,
                chain_width: if job.chain.is_some() { n_created } else { 0 },
                n_created,
                link_outputs: BTreeMap::new(),
            },
        );
        let inputs = job.inputs.clone();
        out.push(Action::Persist(Change::JobCreated { job: Box::new(job), max_attempts, created_ms: now }));
        for replica in 0..first {
            for (task_idx, input) in (0..n_created).zip(&inputs) {
                self.add_task(job_id, task_idx, replica, *input, now, out);
            }
        }
        self.placement_due = true;
        out.push(Action::JobAccepted { job_id });
    }

    /// Creates replica `replica` of a task (replica 0 is the task itself,
    /// made durable with its job) and queues it.
    fn add_task(
        &mut self,
        job_id: JobId,
        task_idx: u32,
        replica: u8,
        input: iog_types::BlobId,
        now: UnixMs,
        out: &mut Vec<Action>,
    ) {
        let job = &self.jobs[&job_id];
        let task_id = job.replica_id(job_id, task_idx, replica);
        let (seq, submitter, n_tasks) = (job.seq, job.submitter.clone(), job.n_tasks);
        // Replica 0 of a task planned at submission is stored with its job.
        let stored_with_job = replica == 0 && (task_idx < job.chain_width || !job.chained());
        self.tasks.insert(
            task_id,
            Task {
                state: TaskState::Queued,
                input,
                attempts: 0,
                token: None,
                holder: None,
                not_before_ms: 0,
                output: None,
                unconfirmed_heartbeats: 0,
                leased_ms: now,
                placed: None,
                price_io_per_hour: Amount::ZERO,
                committed_by: None,
                duration_ms: 0,
                model: None,
            },
        );
        if !stored_with_job {
            out.push(Action::Persist(Change::TaskAdded { task_id, input }));
        }
        self.queue.push(seq, &submitter, n_tasks, task_id, 0, now);
    }

    #[allow(clippy::too_many_arguments)]
    fn on_succeeded(
        &mut self,
        worker_id: WorkerId,
        task_id: TaskId,
        token: LeaseToken,
        output: iog_types::BlobId,
        duration_ms: u64,
        device: String,
        now: UnixMs,
        out: &mut Vec<Action>,
    ) {
        let outcome = match self.tasks.get(&task_id) {
            Some(task) if task.state == TaskState::Committed => {
                if task.token == Some(token) && task.output == Some(output) {
                    CommitOutcome::Duplicate
                } else {
                    CommitOutcome::Stale
                }
            }
            Some(_) if self.holds_current_lease(&worker_id, task_id, token) => CommitOutcome::Committed,
            _ => CommitOutcome::Stale,
        };
        if outcome == CommitOutcome::Committed {
            self.record_outcome(&worker_id, |r| r.tasks_committed += 1, out);
            // The model the committed run ran on stays noted.
            let model = self.tasks.get(&task_id).and_then(|task| task.model.clone());
            self.release_lease(task_id);
            let task = self.tasks.get_mut(&task_id).expect("checked above");
            task.model = model;
            // What the worker reports is taken, but never longer than the
            // lease has lasted: run time is what a paid job is charged for.
            let duration_ms = duration_ms.min(now.saturating_sub(task.leased_ms));
            task.state = TaskState::Committed;
            task.output = Some(output);
            task.committed_by = Some(worker_id.clone());
            task.duration_ms = duration_ms;
            out.push(Action::Persist(Change::TaskCommitted {
                task_id,
                worker_id: worker_id.clone(),
                token,
                output,
                duration_ms,
                committed_ms: now,
                price_io_per_hour: task.price_io_per_hour,
                device,
                model: task.model.as_deref().map(str::to_owned),
            }));
            out.push(Action::ResultReply { worker_id, task_id, token, outcome });
            self.verify_task(task_id, now, out);
        } else {
            out.push(Action::ResultReply { worker_id, task_id, token, outcome });
        }
    }

    /// A replica committed: settles its task when its replicas (or, for a
    /// job that does not verify, the one result) allow, runs more replicas
    /// when they do not agree yet, and fails the job when they never can.
    fn verify_task(&mut self, replica_id: TaskId, now: UnixMs, out: &mut Vec<Action>) {
        let job_id = replica_id.job_id;
        let job = &self.jobs[&job_id];
        let (task_idx, _) = replica_of(job.n_tasks, replica_id.task_idx);
        let n_replicas = job.n_replicas(task_idx);
        let replica_ids: Vec<TaskId> = (0..n_replicas).map(|r| job.replica_id(job_id, task_idx, r)).collect();
        let outputs: Vec<Option<iog_types::BlobId>> = replica_ids
            .iter()
            .map(|id| self.tasks.get(id).filter(|task| task.state == TaskState::Committed).and_then(|task| task.output))
            .collect();
        if matches!(job.verify, Verify::Spot { .. }) {
            self.ask_spot_check(replica_id, now, out);
            return;
        }
        let needed = match job.verify {
            Verify::None => 1,
            Verify::Spot { .. } => unreachable!("spot checks are asked for above"),
            Verify::Replicate { replicas, .. } => replicas,
            Verify::Adaptive { .. } if n_replicas >= 2 => 2,
            Verify::Adaptive { .. } => {
                // The first result of a task: checked unless its worker has
                // a streak of confirmed results and the draw spares it.
                let first = self.tasks[&replica_ids[0]].committed_by.as_ref();
                let streak = first.map_or(0, |worker_id| self.reputation_of(worker_id).valid_streak);
                let streak = u32::try_from(streak).unwrap_or(u32::MAX);
                let task_id = TaskId::new(job_id, task_idx);
                if verify::adaptive_checks(self.config.verify_key, task_id, streak) { 2 } else { 1 }
            }
        };
        let replicas_max = job.verify.replicas_max();
        // Replicas that returned different digests may still agree within
        // the workload's tolerance: the shell compares them first.
        let outputs = match outputs.iter().copied().collect::<Option<Vec<iog_types::BlobId>>>() {
            Some(committed) if committed.iter().any(|output| *output != committed[0]) => {
                match self.classes.get(&replica_ids[0]).filter(|(compared, _)| *compared == committed) {
                    Some((_, classes)) => verify::by_class(&committed, classes),
                    None => {
                        self.ask_compare(replica_ids[0], committed, now, out);
                        return;
                    }
                }
            }
            _ => outputs,
        };
        match verify::judge(&outputs, needed, replicas_max) {
            Verdict::Wait => {}
            Verdict::More(more) => {
                let input = self.tasks[&replica_ids[0]].input;
                for replica in n_replicas..n_replicas + more {
                    self.add_task(job_id, task_idx, replica, input, now, out);
                }
                let job = self.jobs.get_mut(&job_id).expect("the job exists");
                job.replicas[task_idx as usize] = n_replicas + more;
                self.placement_due = true;
            }
            Verdict::NoQuorum { n_results, n_digests } => {
                let reason = format!(
                    "task {} has no agreed result: its {n_results} runs returned {n_digests} different outputs \
                     (verify.replicas_max is {replicas_max})",
                    TaskId::new(job_id, task_idx)
                );
                self.end_job(job_id, JobState::Failed, Some(reason), now, out);
            }
            Verdict::Accept { output, valid, wrong } => {
                self.classes.remove(&replica_ids[0]);
                let compared = valid.len() >= 2;
                let valid: Vec<ValidResult> = valid
                    .into_iter()
                    .map(|r| {
                        let task = &self.tasks[&replica_ids[usize::from(r)]];
                        ValidResult {
                            task_id: replica_ids[usize::from(r)],
                            worker_id: task.committed_by.clone().expect("a committed task names its worker"),
                            duration_ms: task.duration_ms,
                            price_io_per_hour: task.price_io_per_hour,
                        }
                    })
                    .collect();
                let wrong: Vec<WrongResult> = wrong
                    .into_iter()
                    .map(|r| {
                        let task = &self.tasks[&replica_ids[usize::from(r)]];
                        WrongResult {
                            task_id: replica_ids[usize::from(r)],
                            worker_id: task.committed_by.clone().expect("a committed task names its worker"),
                            output: task.output.expect("a committed task has an output"),
                        }
                    })
                    .collect();
                let task_id = TaskId::new(job_id, task_idx);
                if compared {
                    for result in &valid {
                        self.record_outcome(
                            &result.worker_id,
                            |r| {
                                r.results_valid += 1;
                                r.valid_streak += 1;
                            },
                            out,
                        );
                    }
                }
                for result in &wrong {
                    out.push(Action::SlashStake {
                        worker_id: result.worker_id.clone(),
                        bps: self.config.wrong_result_slash_bps,
                        reason_key: format!(
                            "wrong result {}: {} where {output} was agreed",
                            result.task_id, result.output
                        ),
                    });
                    self.record_outcome(&result.worker_id, Reputation::reset_for_wrong_result, out);
                    self.suspend(&result.worker_id, now);
                }
                out.push(Action::Persist(Change::TaskVerified { task_id, output, valid, wrong }));
                self.settle(job_id, task_idx, output, now, out);
            }
        }
    }

    /// Asks the shell to spot-check a committed run of a spot-checked job,
    /// and to be asked again if no report comes within
    /// `spot_check_timeout_ms`.
    fn ask_spot_check(&mut self, replica_id: TaskId, now: UnixMs, out: &mut Vec<Action>) {
        let Some(task) = self.tasks.get(&replica_id) else { return };
        let Some(output) = task.output.filter(|_| task.state == TaskState::Committed) else { return };
        self.spot.ask(replica_id, now.saturating_add(self.config.spot_check_timeout_ms));
        let seed = verify::spot_seed(self.config.verify_key, replica_id);
        out.push(Action::SpotCheck { task_id: replica_id, input: task.input, output, seed });
    }

    /// Asks again for the spot checks that did not report in time, and
    /// fails the job of a run asked for [`SPOT_ASKS_MAX`] times.
    fn retry_spot_checks(&mut self, now: UnixMs, out: &mut Vec<Action>) {
        for (replica_id, asks) in self.spot.overdue(now) {
            if asks < SPOT_ASKS_MAX {
                self.ask_spot_check(replica_id, now, out);
                continue;
            }
            self.spot.answered(replica_id);
            let reason = format!(
                "run {replica_id} could not be spot-checked: the coordinator's check did not report after \
                 {SPOT_ASKS_MAX} tries (its log says why)"
            );
            if self.jobs.get(&replica_id.job_id).is_some_and(|job| job.state == JobState::Running) {
                self.end_job(replica_id.job_id, JobState::Failed, Some(reason), now, out);
            }
        }
    }

    /// A task's result is accepted: the job is done when it was the last
    /// one, and a chained job whose last link is then settled asks for its
    /// next link's inputs.
    fn settle(&mut self, job_id: JobId, task_idx: u32, output: iog_types::BlobId, now: UnixMs, out: &mut Vec<Action>) {
        let job = self.jobs.get_mut(&job_id).expect("the job exists");
        job.settled[task_idx as usize] = true;
        job.n_settled += 1;
        if job.n_settled == job.n_tasks {
            self.end_job(job_id, JobState::Done, None, now, out);
            return;
        }
        if !job.chained() || !job.last_link().contains(&task_idx) {
            return;
        }
        job.link_outputs.insert(task_idx, output);
        let link = job.last_link();
        if job.n_created < job.n_tasks && job.link_outputs.len() == link.len() {
            let previous = link
                .map(|task_idx| (self.tasks[&job.replica_id(job_id, task_idx, 0)].input, job.link_outputs[&task_idx]))
                .collect();
            let next = job.n_created;
            self.ask_chain_input(job_id, next, previous, now, out);
        }
    }

    /// Asks the shell to make the inputs of the link starting at task
    /// `task_idx` from the link before's inputs and accepted outputs
    /// (`previous`), and to be asked again if no report comes within
    /// `spot_check_timeout_ms`.
    fn ask_chain_input(
        &mut self,
        job_id: JobId,
        task_idx: u32,
        previous: LinkResults,
        now: UnixMs,
        out: &mut Vec<Action>,
    ) {
        let next = TaskId::new(job_id, task_idx);
        self.chain.ask(next, now.saturating_add(self.config.spot_check_timeout_ms));
        self.chain_asked.insert(next, previous.clone());
        out.push(Action::ChainInput { job_id, task_idx, previous });
    }

    /// Asks again for the next inputs that did not come in time, and fails
    /// the job of one asked for [`SPOT_ASKS_MAX`] times.
    fn retry_chain_inputs(&mut self, now: UnixMs, out: &mut Vec<Action>) {
        for (next, asks) in self.chain.overdue(now) {
            let Some(previous) = self.chain_asked.get(&next).cloned() else { continue };
            if asks < SPOT_ASKS_MAX {
                self.ask_chain_input(next.job_id, next.task_idx, previous, now, out);
                continue;
            }
            let reason = format!(
                "the inputs of the tasks from {next} on could not be made: the coordinator did not report after \
                 {SPOT_ASKS_MAX} tries (its log says why)"
            );
            self.on_chain_input(next.job_id, next.task_idx, Err(reason), now, out);
        }
    }

    /// The shell made (or could not make) a chained job's next link's
    /// inputs: its tasks are created and queued, or the job fails.
    fn on_chain_input(
        &mut self,
        job_id: JobId,
        task_idx: u32,
        made: Result<Vec<iog_types::BlobId>, String>,
        now: UnixMs,
        out: &mut Vec<Action>,
    ) {
        let next = TaskId::new(job_id, task_idx);
        if !self.chain.answered(next) {
            return; // A late or repeated report, or its job ended.
        }
        self.chain_asked.remove(&next);
        let Some(job) = self.jobs.get_mut(&job_id).filter(|job| job.state == JobState::Running) else { return };
        let width = job.chain_width;
        let made = made.and_then(|inputs| match inputs.len() == width as usize {
            true => Ok(inputs),
            false => Err(format!("{} inputs were made for a link of {width} tasks", inputs.len())),
        });
        match made {
            Ok(inputs) => {
                job.n_created = task_idx + width;
                job.link_outputs.clear();
                let replicas = job.verify.replicas_first();
                for n in job.replicas.iter_mut().skip(task_idx as usize).take(width as usize) {
                    *n = replicas;
                }
                for (task_idx, input) in (task_idx..).zip(inputs) {
                    for replica in 0..replicas {
                        self.add_task(job_id, task_idx, replica, input, now, out);
                    }
                }
                self.placement_due = true;
            }
            Err(reason) => {
                let reason = match width {
                    1 => format!("task {next}'s input could not be made from the task before: {reason}"),
                    _ => format!(
                        "the inputs of tasks {task_idx}..{} could not be made from the link before: {reason}",
                        task_idx + width
                    ),
                };
                self.end_job(job_id, JobState::Failed, Some(reason), now, out);
            }
        }
    }

    /// Asks the shell which of a task's replicas' `outputs` agree within
    /// the workload's tolerance, and to be asked again if no report comes
    /// within `spot_check_timeout_ms`.
    fn ask_compare(&mut self, replica_id: TaskId, outputs: Vec<iog_types::BlobId>, now: UnixMs, out: &mut Vec<Action>) {
        let Some(task) = self.tasks.get(&replica_id) else { return };
        self.compares.ask(replica_id, now.saturating_add(self.config.spot_check_timeout_ms));
        out.push(Action::CompareOutputs { task_id: replica_id, input: task.input, outputs: outputs.clone() });
        self.compare_asked.insert(replica_id, outputs);
    }

    /// Asks again for the comparisons that did not report in time, and
    /// fails the job of a task asked for [`SPOT_ASKS_MAX`] times.
    fn retry_compares(&mut self, now: UnixMs, out: &mut Vec<Action>) {
        for (replica_id, asks) in self.compares.overdue(now) {
            let Some(outputs) = self.compare_asked.get(&replica_id).cloned() else { continue };
            if asks < SPOT_ASKS_MAX {
                self.ask_compare(replica_id, outputs, now, out);
                continue;
            }
            self.compares.answered(replica_id);
            self.compare_asked.remove(&replica_id);
            let reason = format!(
                "the results of task {replica_id} could not be compared: the coordinator's comparison did not \
                 report after {SPOT_ASKS_MAX} tries (its log says why)"
            );
            if self.jobs.get(&replica_id.job_id).is_some_and(|job| job.state == JobState::Running) {
                self.end_job(replica_id.job_id, JobState::Failed, Some(reason), now, out);
            }
        }
    }

    /// The shell's comparison of a task's replicas: judged by class, if it
    /// is of the outputs the task has now (a late or repeated report is
    /// dropped).
    fn on_outputs_compared(
        &mut self,
        replica_id: TaskId,
        outputs: Vec<iog_types::BlobId>,
        classes: Vec<u8>,
        now: UnixMs,
        out: &mut Vec<Action>,
    ) {
        if !self.compares.awaits(replica_id) || self.compare_asked.get(&replica_id) != Some(&outputs) {
            return;
        }
        self.compares.answered(replica_id);
        self.compare_asked.remove(&replica_id);
        self.classes.insert(replica_id, (outputs, classes));
        self.verify_task(replica_id, now, out);
    }

    /// A spot check's report: a run that passed settles its task and is
    /// paid; one that failed is proven wrong (slashed, reputation reset,
    /// suspended, never paid) and its task runs again on another worker, or
    /// the job fails when no run is left.
    fn on_spot_checked(&mut self, replica_id: TaskId, passed: bool, detail: &str, now: UnixMs, out: &mut Vec<Action>) {
        if !self.spot.answered(replica_id) {
            return; // A late or repeated report, or its job ended.
        }
        let job_id = replica_id.job_id;
        let job = &self.jobs[&job_id];
        let (task_idx, _) = replica_of(job.n_tasks, replica_id.task_idx);
        let n_replicas = job.n_replicas(task_idx);
        let replicas_max = job.verify.replicas_max();
        let task = &self.tasks[&replica_id];
        let worker_id = task.committed_by.clone().expect("a committed task names its worker");
        let output = task.output.expect("a committed task has an output");
        if passed {
            let valid = vec![ValidResult {
                task_id: replica_id,
                worker_id: worker_id.clone(),
                duration_ms: task.duration_ms,
                price_io_per_hour: task.price_io_per_hour,
            }];
            self.record_outcome(
                &worker_id,
                |r| {
                    r.results_valid += 1;
                    r.valid_streak += 1;
                },
                out,
            );
            let task_id = TaskId::new(job_id, task_idx);
            out.push(Action::Persist(Change::TaskVerified { task_id, output, valid, wrong: Vec::new() }));
            self.settle(job_id, task_idx, output, now, out);
            return;
        }
        let reason = format!("its spot check failed: {detail}");
        out.push(Action::SlashStake {
            worker_id: worker_id.clone(),
            bps: self.config.wrong_result_slash_bps,
            reason_key: format!("wrong result {replica_id}: {output} failed its spot check"),
        });
        out.push(Action::Persist(Change::ResultRejected {
            task_id: replica_id,
            worker_id: worker_id.clone(),
            output,
            reason: reason.clone(),
        }));
        self.record_outcome(&worker_id, Reputation::reset_for_wrong_result, out);
        self.suspend(&worker_id, now);
        if n_replicas < replicas_max {
            let input = self.tasks[&replica_id].input;
            self.add_task(job_id, task_idx, n_replicas, input, now, out);
            self.jobs.get_mut(&job_id).expect("the job exists").replicas[task_idx as usize] = n_replicas + 1;
            self.placement_due = true;
        } else {
            let reason = format!(
                "task {} has no result that passed its spot check after {n_replicas} runs (verify.replicas_max is \
                 {replicas_max}); the last {reason}",
                TaskId::new(job_id, task_idx)
            );
            self.end_job(job_id, JobState::Failed, Some(reason), now, out);
        }
    }

    fn on_tick(&mut self, now: UnixMs, out: &mut Vec<Action>) {
        while let Some(&(deadline_ms, job_id)) = self.reservation_deadlines.first() {
            if deadline_ms > now {
                break;
            }
            self.release_reservation(job_id);
            if let Some(job) = self.jobs.get_mut(&job_id) {
                job.gang_not_before_ms = now + self.config.gang_retry_ms;
                self.gang_waits.insert((job.gang_not_before_ms, job_id));
            }
        }
        while let Some(&(wait_ms, _)) = self.gang_waits.first() {
            if wait_ms > now {
                break;
            }
            self.gang_waits.pop_first();
            // The job may have ended meanwhile; a spare round costs little.
            self.placement_due = true;
        }
        while let Some(&(edge_ms, _)) = self.window_edges.first() {
            if edge_ms > now {
                break;
            }
            let (_, worker_id) = self.window_edges.pop_first().expect("first exists");
            if let Some(worker) = self.workers.get_mut(&worker_id) {
                worker.next_edge_ms = None;
            }
            self.refresh_available(&worker_id, now);
        }
        // A worker is dead once strictly more than its timeout has passed
        // since its last heartbeat.
        while let Some((deadline, _)) = self.deadlines.first() {
            if *deadline >= now {
                break;
            }
            let (_, worker_id) = self.deadlines.pop_first().expect("first exists");
            let worker = self.workers.remove(&worker_id).expect("a deadline belongs to a known worker");
            self.drop_reservations_on(&worker.entries, false);
            for entry in &worker.entries {
                self.index.remove(*entry);
            }
            // Its leases' devices went with the entries. Forget them on
            // every lease first: lapsing one may fail the job and release
            // the others, which must not give back to a removed entry.
            for task_id in &worker.leases {
                if let Some(task) = self.tasks.get_mut(task_id) {
                    task.placed = None;
                }
            }
            if let Some(edge_ms) = worker.next_edge_ms {
                self.window_edges.remove(&(edge_ms, worker_id.clone()));
            }
            if let Some(due_ms) = worker.next_challenge_ms {
                self.challenges_due.remove(&(due_ms, worker_id.clone()));
            }
            let missed = self.config.missed_heartbeats_max;
            let lapsed = worker.leases.len() as u64;
            if lapsed > 0 {
                // The worker is gone from the index; its score counts when it returns.
                self.reputations.entry(worker_id.clone()).or_default().leases_lapsed += lapsed;
                self.persist_record(&worker_id, out);
            }
            for task_id in worker.leases {
                // An earlier lapse may have failed the job, cancelling this task.
                if !self.is_leased_to(task_id, &worker_id) {
                    continue;
                }
                // The worker and its entries are gone already, so only the
                // task side (and its submitter's share) remains.
                let task = self.tasks.get_mut(&task_id).expect("a lease's task exists");
                task.holder = None;
                task.state = TaskState::Queued;
                let job = &self.jobs[&task_id.job_id];
                self.queue.remove_use(&job.submitter, job.devices_per_task);
                let error = format!("worker {} missed {missed} heartbeats", worker_id.short());
                self.retry_or_fail(task_id, error, now, out);
            }
            out.push(Action::WorkerDead { worker_id });
        }
    }

    /// Gives ready tasks to free devices, in fair-share order, until no
    /// waiting task fits any free device.
    ///
    /// Each round asks the submitter holding the fewest devices for its
    /// oldest job whose requirements some free device meets. A job whose
    /// requirements fit nothing free is passed over for the rest of the
    /// round, as is a submitter none of whose jobs fit, so one job waiting
    /// for a device that does not exist holds up no one else.
    fn place(&mut self, now: UnixMs, out: &mut Vec<Action>) {
        let mut blocked_classes: HashSet<ClassId> = HashSet::new();
        let mut blocked_jobs: HashSet<JobId> = HashSet::new();
        let mut blocked_submitters: HashSet<Submitter> = HashSet::new();
        let mut wake: Vec<(UnixMs, JobId)> = Vec::new();
        while self.queue.has_ready() && self.index.n_free_devices() > 0 {
            let Some(submitter) = self.queue.next_submitter(|s| blocked_submitters.contains(s)) else {
                break;
            };
            let mut choice = None;
            for (seq, job_id) in self.queue.ready_jobs_of(&submitter) {
                let job = &self.jobs[&job_id];
                if blocked_classes.contains(&job.class) || blocked_jobs.contains(&job_id) {
                    continue;
                }
                if job.gang_latency_ms_max.is_some() {
                    if now < job.gang_not_before_ms {
                        // Its wake-up may have passed already if the clock
                        // went back; ask for one again.
                        wake.push((job.gang_not_before_ms, job_id));
                        blocked_jobs.insert(job_id);
                        continue;
                    }
                    choice = Some((seq, job_id, None));
                    break;
                }
                match self.index.find(job.class) {
                    Some(placement) => {
                        choice = Some((seq, job_id, Some(placement.entry)));
                        break;
                    }
                    None => {
                        blocked_classes.insert(job.class);
                    }
                }
            }
            match choice {
                None => {
                    blocked_submitters.insert(submitter);
                }
                Some((seq, job_id, None)) => {
                    if !self.place_gang(seq, job_id, now, out) {
                        blocked_jobs.insert(job_id);
                    }
                }
                Some((seq, job_id, Some(entry))) => match self.pick_task(seq, job_id, entry) {
                    Some((task_id, entry)) => {
                        let taken = self.queue.take_ready(seq, task_id);
                        debug_assert!(taken, "a picked task is ready");
                        self.lease_task(task_id, entry, true, now, out);
                    }
                    None => {
                        blocked_jobs.insert(job_id);
                    }
                },
            }
        }
        self.gang_waits.extend(wake);
    }

    /// Which ready task of a job goes to the free entry `entry`, and where:
    /// its first ready task, on `entry`, unless that task is a replica its
    /// siblings keep off `entry` (they ran on its worker, or on another
    /// model where the job keeps replicas on one). Then another ready task
    /// that may run there, or failing that the first one on the best entry
    /// its siblings allow; `None` when neither exists.
    fn pick_task(&self, seq: u64, job_id: JobId, entry: EntryId) -> Option<(TaskId, EntryId)> {
        let job = &self.jobs[&job_id];
        let first = self.queue.ready_of(seq).next()?;
        if job.verify == Verify::None {
            return Some((first, entry));
        }
        let view = self.index.get(entry).expect("found entries exist");
        if let Some(task_id) =
            self.queue.ready_of(seq).take(REPLICA_SCAN_MAX).find(|id| self.siblings(*id).allow(view.owner, view.group))
        {
            return Some((task_id, entry));
        }
        let siblings = self.siblings(first);
        let placement = self.index.find_where(job.class, |worker_id, group| siblings.allow(worker_id, group));
        Some((first, placement?.entry))
    }

    /// What the other replicas of a replica's task allow it: not the
    /// workers that run or ran them; and for a job whose replicas keep to
    /// one model, the model of the first of them whose model is known,
    /// while another worker that could run the job has a device of it
    /// (busy, paused or out of hours included: the replica waits for it).
    fn siblings(&self, replica_id: TaskId) -> Siblings<'_> {
        let job = &self.jobs[&replica_id.job_id];
        let (task_idx, replica) = replica_of(job.n_tasks, replica_id.task_idx);
        let others: Vec<&Task> = (0..job.n_replicas(task_idx))
            .filter(|r| *r != replica)
            .filter_map(|r| self.tasks.get(&job.replica_id(replica_id.job_id, task_idx, r)))
            .collect();
        let workers: Vec<&WorkerId> =
            others.iter().filter_map(|task| task.holder.as_ref().or(task.committed_by.as_ref())).collect();
        let Some(requirements) = self.index.requirements(job.class).filter(|r| r.replicas_same_model) else {
            return Siblings { workers, model: None };
        };
        let model = others.iter().find_map(|task| {
            task.model.as_deref().or_else(|| {
                // A commit stored before models were: the model its worker
                // offers now.
                let worker = self.workers.get(task.holder.as_ref().or(task.committed_by.as_ref())?)?;
                worker.offer.groups.iter().find(|group| requirements.fits_device(group)).map(|g| g.model.as_str())
            })
        });
        // Only a device the job could run on is worth waiting for: one of
        // a worker that is not the siblings', and that fits every
        // constraint but its free devices and availability. Found among
        // the model's entries, the first that fits ends the search.
        let model = model.filter(|model| {
            self.index.of_model(model).any(|view| {
                !workers.contains(&view.owner)
                    && requirements.fits(
                        view.group,
                        view.group.count,
                        &view.terms.region,
                        view.terms.trust,
                        view.terms.price_io_per_device_hour,
                        &view.terms.software,
                    )
            })
        });
        Siblings { workers, model }
    }

    /// The model a lease of a job's task on `entry` notes: its devices'
    /// model, for a job whose replicas keep to one model; else none.
    fn lease_model(&self, job_id: JobId, entry: EntryId) -> Option<Box<str>> {
        let job = &self.jobs[&job_id];
        let keeps_model = job.verify != Verify::None
            && self.index.requirements(job.class).is_some_and(|requirements| requirements.replicas_same_model);
        keeps_model.then(|| self.index.get(entry).expect("entries placed on exist").group.model.as_str().into())
    }

    /// Leases a queued task on an entry's devices (taking them unless a
    /// gang reservation already holds them).
    fn lease_task(&mut self, task_id: TaskId, entry: EntryId, take: bool, now: UnixMs, out: &mut Vec<Action>) {
        let job = &self.jobs[&task_id.job_id];
        let task_timeout_ms = self.config.task_timeout_ms(job.task_timeout_ms);
        let (count, submitter) = (job.devices_per_task, job.submitter.clone());
        let view = self.index.get(entry).expect("placed entries exist");
        let worker_id = view.owner.clone();
        let model = self.lease_model(task_id.job_id, entry);
        let price_io_per_hour =
            view.terms.price_io_per_device_hour.checked_mul_div(u64::from(count), 1).unwrap_or(Amount::MAX);
        if take {
            self.index.take(entry, count);
        }
        self.queue.add_use(&submitter, count);
        let token = LeaseToken(self.next_token);
        self.next_token += 1;
        if let Some(task_timeout_ms) = task_timeout_ms {
            self.lease_deadlines.insert((now + task_timeout_ms, task_id, token));
        }
        let task = self.tasks.get_mut(&task_id).expect("queued tasks exist");
        debug_assert_eq!(task.state, TaskState::Queued);
        task.state = TaskState::Leased;
        task.attempts += 1;
        task.token = Some(token);
        task.holder = Some(worker_id.clone());
        task.unconfirmed_heartbeats = 0;
        task.leased_ms = now;
        task.placed = Some(entry);
        task.model = model;
        task.price_io_per_hour = price_io_per_hour;
        let worker = self.workers.get_mut(&worker_id).expect("indexed workers are known");
        worker.leases.insert(task_id);
        out.push(Action::Persist(Change::TaskLeased {
            task_id,
            worker_id: worker_id.clone(),
            token,
            attempts: task.attempts,
            price_io_per_hour,
        }));
        out.push(Action::Assign { worker_id, task_id, token, input: task.input });
    }

    /// Places every ready task of a gang job at once, on distinct workers
    /// whose estimated pairwise round trip stays under the job's bound, and
    /// returns true; or, when no such group is free, holds the fitting
    /// devices it finds (up to the gang's size) so that smaller tasks do not
    /// take them as they free, and returns false. A hold lasts at most
    /// `gang_reserve_ms`; then it is released and the gang waits
    /// `gang_retry_ms` before it tries again.
    fn place_gang(&mut self, seq: u64, job_id: JobId, now: UnixMs, out: &mut Vec<Action>) -> bool {
        let job = &self.jobs[&job_id];
        let (class, count) = (job.class, job.devices_per_task);
        let bound_ms = f64::from(job.gang_latency_ms_max.expect("a gang job has a bound"));
        let need = self.queue.ready_count(seq);
        // All or nothing: a member still backing off after a failure, or
        // still running, keeps the whole gang waiting.
        let unfinished = (0..job.n_tasks)
            .filter(|idx| {
                self.tasks
                    .get(&TaskId::new(job_id, *idx))
                    .is_some_and(|t| matches!(t.state, TaskState::Queued | TaskState::Leased))
            })
            .count();
        if unfinished != need {
            return false;
        }
        let reserved: Vec<EntryId> = job.reservation.as_ref().map(|r| r.entries.clone()).unwrap_or_default();
        let owner = |entry: &EntryId| self.index.get(*entry).expect("held entries exist").owner.clone();
        let reserved_owners: HashSet<WorkerId> = reserved.iter().map(owner).collect();
        let fresh: Vec<EntryId> = self
            .index
            .candidates(class, iog_sched::gang::CANDIDATES_MAX)
            .into_iter()
            .filter(|entry| !reserved_owners.contains(&owner(entry)))
            .collect();
        let all: Vec<EntryId> = reserved.iter().chain(&fresh).copied().collect();
        // Measured coordinates first: a gang among workers whose coordinates
        // have settled. Failing that, every candidate by the conservative
        // estimate (the path through the coordinator), which a new worker
        // without a settled coordinate can join.
        let settled: Vec<(usize, iog_sched::Coord)> = all
            .iter()
            .enumerate()
            .filter_map(|(idx, entry)| self.settled_coord(&owner(entry)).map(|coord| (idx, coord)))
            .collect();
        let settled_coords: Vec<iog_sched::Coord> = settled.iter().map(|(_, coord)| *coord).collect();
        let by_coords = iog_sched::gang::choose(&settled_coords, need, bound_ms)
            .map(|chosen| chosen.into_iter().map(|k| settled[k].0).collect::<Vec<usize>>());
        let by_rtt = || {
            let coords: Vec<iog_sched::Coord> = all.iter().map(|entry| self.rtt_coord(&owner(entry))).collect();
            iog_sched::gang::choose(&coords, need, bound_ms)
        };
        if let Some(chosen) = by_coords.or_else(by_rtt) {
            let chosen: HashSet<usize> = chosen.into_iter().collect();
            for (idx, entry) in reserved.iter().enumerate() {
                self.reserved_by.remove(&(*entry, job_id));
                if !chosen.contains(&idx) {
                    self.index.give_back(*entry, count);
                }
            }
            self.clear_reservation(job_id);
            let mut chosen: Vec<usize> = chosen.into_iter().collect();
            chosen.sort_unstable();
            for idx in chosen {
                let task_id = self.queue.pop_ready_of(seq).expect("the gang's tasks are ready");
                self.lease_task(task_id, all[idx], idx >= reserved.len(), now, out);
            }
            return true;
        }
        let mut held = reserved;
        for entry in fresh {
            if held.len() >= need {
                break;
            }
            self.index.take(entry, count);
            self.reserved_by.insert((entry, job_id));
            held.push(entry);
        }
        if held.is_empty() {
            return false;
        }
        let deadline_ms = match &self.jobs[&job_id].reservation {
            Some(reservation) => reservation.deadline_ms,
            None => {
                let deadline_ms = now + self.config.gang_reserve_ms;
                self.reservation_deadlines.insert((deadline_ms, job_id));
                deadline_ms
            }
        };
        self.jobs.get_mut(&job_id).expect("the job exists").reservation =
            Some(Reservation { entries: held, deadline_ms });
        false
    }

    /// The worker's reported network coordinate once it has settled (its
    /// error estimate at most [`COORD_ERROR_SETTLED`]).
    fn settled_coord(&self, worker_id: &WorkerId) -> Option<iog_sched::Coord> {
        self.workers.get(worker_id)?.coord.filter(|coord| coord.error <= COORD_ERROR_SETTLED)
    }

    /// A stand-in coordinate for a worker without a settled one: its round
    /// trip to the coordinator as its height, so a pair is estimated at the
    /// sum of their round trips — the path through the coordinator, which
    /// the direct path rarely exceeds.
    fn rtt_coord(&self, worker_id: &WorkerId) -> iog_sched::Coord {
        let rtt_ms = self.workers.get(worker_id).map_or(0, |w| w.rtt_ms);
        iog_sched::Coord {
            height_ms: f64::from(rtt_ms).max(iog_sched::vivaldi::HEIGHT_MS_MIN),
            ..iog_sched::Coord::new()
        }
    }

    /// Forgets a gang's hold (the caller has dealt with its devices).
    fn clear_reservation(&mut self, job_id: JobId) {
        if let Some(reservation) = self.jobs.get_mut(&job_id).and_then(|job| job.reservation.take()) {
            self.reservation_deadlines.remove(&(reservation.deadline_ms, job_id));
            for entry in reservation.entries {
                self.reserved_by.remove(&(entry, job_id));
            }
        }
    }

    /// Gives back every device a gang holds.
    fn release_reservation(&mut self, job_id: JobId) {
        let Some(job) = self.jobs.get(&job_id) else { return };
        let count = job.devices_per_task;
        let entries = job.reservation.as_ref().map(|r| r.entries.clone()).unwrap_or_default();
        for entry in entries {
            self.index.give_back(entry, count);
        }
        self.clear_reservation(job_id);
        self.placement_due = true;
    }

    /// Entries about to be removed, or whose worker paused, leave the gang
    /// holds they were part of (given back first unless they are going).
    fn drop_reservations_on(&mut self, entries: &[EntryId], give_back: bool) {
        for entry in entries {
            let holders: Vec<JobId> = self
                .reserved_by
                .range((*entry, JobId(0))..=(*entry, JobId(u64::MAX)))
                .map(|&(_, job_id)| job_id)
                .collect();
            for job_id in holders {
                self.reserved_by.remove(&(*entry, job_id));
                let job = self.jobs.get_mut(&job_id).expect("a hold's job exists");
                if let Some(reservation) = job.reservation.as_mut() {
                    reservation.entries.retain(|e| e != entry);
                }
                if give_back {
                    let count = job.devices_per_task;
                    self.index.give_back(*entry, count);
                }
            }
        }
    }

    /// A gang runs together or not at all: when one member's lease ends
    /// without a commit, the members still running are stopped and queued
    /// again, their attempts not counted, to start together once more.
    fn break_gang(&mut self, job_id: JobId, now: UnixMs, out: &mut Vec<Action>) {
        let Some(job) = self.jobs.get(&job_id) else { return };
        if job.gang_latency_ms_max.is_none() || job.state != JobState::Running {
            return;
        }
        let running: Vec<TaskId> = (0..job.n_tasks)
            .map(|idx| TaskId::new(job_id, idx))
            .filter(|task_id| self.tasks.get(task_id).is_some_and(|t| t.state == TaskState::Leased))
            .collect();
        for task_id in running {
            self.yield_task(task_id, "a member of its gang stopped; the gang starts again together", now, out);
        }
    }

    /// Takes a leased task back without counting the attempt and queues it
    /// at once: the worker is told to stop it.
    fn yield_task(&mut self, task_id: TaskId, reason: &str, now: UnixMs, out: &mut Vec<Action>) {
        let task = self.tasks.get(&task_id).expect("a yielded task exists");
        let (token, holder) = (task.token.expect("a leased task has a token"), task.holder.clone());
        self.release_lease(task_id);
        let task = self.tasks.get_mut(&task_id).expect("a yielded task exists");
        task.attempts = task.attempts.saturating_sub(1);
        task.not_before_ms = now;
        let attempts = task.attempts;
        let job = &self.jobs[&task_id.job_id];
        let (seq, submitter, n_tasks) = (job.seq, job.submitter.clone(), job.n_tasks);
        out.push(Action::Persist(Change::TaskYielded { task_id, attempts, reason: reason.to_owned() }));
        if let Some(holder) = holder {
            out.push(Action::Revoke { worker_id: holder, task_id, token, reason: reason.to_owned() });
        }
        self.queue.push(seq, &submitter, n_tasks, task_id, now, now);
    }

    /// Puts a task whose lease ended back in the queue, or fails it (and its
    /// job) when it has used all its attempts. The task must hold no lease.
    fn retry_or_fail(&mut self, task_id: TaskId, error: String, now: UnixMs, out: &mut Vec<Action>) {
        let job = self.jobs.get(&task_id.job_id).expect("a task's job exists");
        debug_assert_eq!(job.state, JobState::Running, "only tasks of running jobs are retried");
        let (max_attempts, seq, submitter, n_tasks) = (job.max_attempts, job.seq, job.submitter.clone(), job.n_tasks);
        let task = self.tasks.get_mut(&task_id).expect("the task exists");
        if task.attempts >= max_attempts {
            task.state = TaskState::Failed;
            let attempts = task.attempts;
            out.push(Action::Persist(Change::TaskFailed { task_id, error: error.clone() }));
            let reason = format!("task {task_id} failed after {attempts} attempts: {error}");
            self.end_job(task_id.job_id, JobState::Failed, Some(reason), now, out);
        } else {
            let not_before_ms = now + self.config.retry_backoff_ms(task.attempts);
            task.state = TaskState::Queued;
            task.not_before_ms = not_before_ms;
            out.push(Action::Persist(Change::TaskRequeued { task_id, not_before_ms, error }));
            self.queue.push(seq, &submitter, n_tasks, task_id, not_before_ms, now);
            self.placement_due = true;
            self.break_gang(task_id.job_id, now, out);
        }
    }

    /// Ends a running job: every task not final is cancelled and its holder told to stop.
    fn end_job(&mut self, job_id: JobId, state: JobState, reason: Option<String>, now: UnixMs, out: &mut Vec<Action>) {
        self.release_reservation(job_id);
        let job = self.jobs.get_mut(&job_id).expect("the job exists");
        job.state = state;
        let seq = job.seq;
        let task_ids = job.task_ids(job_id);
        for &task_id in &task_ids {
            let task = self.tasks.get(&task_id).expect("a job's tasks exist");
            match task.state {
                TaskState::Queued => {
                    self.queue.remove(seq, task_id, task.not_before_ms);
                }
                TaskState::Leased => {
                    let holder = task.holder.clone().expect("a leased task has a holder");
                    let token = task.token.expect("a leased task has a token");
                    self.release_lease(task_id);
                    out.push(Action::Revoke {
                        worker_id: holder,
                        task_id,
                        token,
                        reason: format!("job {job_id} is {state}"),
                    });
                }
                TaskState::Committed | TaskState::Failed | TaskState::Cancelled => continue,
            }
        }
        // The store keeps the finished job's tasks; memory holds only what
        // running jobs need, so a long-lived coordinator does not grow with
        // its history. A late result for a forgotten task is answered stale.
        for task_id in &task_ids {
            self.tasks.remove(task_id);
            self.spot.answered(*task_id);
            self.compares.answered(*task_id);
            self.compare_asked.remove(task_id);
            self.classes.remove(task_id);
        }
        let next = TaskId::new(job_id, self.jobs[&job_id].n_created);
        self.chain.answered(next);
        self.chain_asked.remove(&next);
        if let Some(job) = self.jobs.get_mut(&job_id) {
            job.link_outputs.clear();
        }
        let class = self.jobs[&job_id].class;
        self.index.release_class(class);
        out.push(Action::Persist(Change::JobEnded { job_id, state, reason, ended_ms: now }));
        out.push(Action::JobFinished { job_id, state });
    }

    fn is_leased_to(&self, task_id: TaskId, worker_id: &WorkerId) -> bool {
        self.tasks
            .get(&task_id)
            .is_some_and(|task| task.state == TaskState::Leased && task.holder.as_ref() == Some(worker_id))
    }

    /// Whether `worker_id` holds `task_id` under the lease `token` now.
    pub fn holds_current_lease(&self, worker_id: &WorkerId, task_id: TaskId, token: LeaseToken) -> bool {
        self.tasks.get(&task_id).is_some_and(|task| {
            task.state == TaskState::Leased && task.token == Some(token) && task.holder.as_ref() == Some(worker_id)
        })
    }

    /// Detaches a leased task from its holder; the caller decides its next state.
    fn release_lease(&mut self, task_id: TaskId) {
        let task = self.tasks.get_mut(&task_id).expect("the task exists");
        let holder = task.holder.take();
        let placed = task.placed.take();
        // A run that ends without a result pins no model for its siblings.
        task.model = None;
        let was_leased = task.state == TaskState::Leased;
        task.state = TaskState::Queued;
        let job = &self.jobs[&task_id.job_id];
        if let Some(entry) = placed {
            self.index.give_back(entry, job.devices_per_task);
            self.placement_due = true;
        }
        if was_leased {
            self.queue.remove_use(&job.submitter, job.devices_per_task);
        }
        if let Some(holder) = holder
            && let Some(worker) = self.workers.get_mut(&holder)
        {
            worker.leases.remove(&task_id);
        }
    }

    /// Puts a worker's entries in or out of placement: in while it is
    /// connected, its owner is not using it, and one of its windows is open.
    fn refresh_available(&mut self, worker_id: &WorkerId, now: UnixMs) {
        let Some(worker) = self.workers.get_mut(worker_id) else {
            return;
        };
        // A worker whose latest hardware challenge failed takes no new tasks
        // until it passes one, nor one a quorum proved wrong while its
        // suspension lasts, nor one lending memory no round has proven
        // (it drains, and is challenged once idle).
        let failing = self.challenges.get(worker_id).is_some_and(|record| record.failed_in_row > 0)
            || self.suspended_until.contains_key(worker_id);
        let available = worker.connected
            && !worker.paused
            && !worker.challenging
            && !worker.memory_unproven
            && !failing
            && worker.offer.available_at(now);
        let next_edge_ms = if worker.connected { worker.offer.next_change_after(now) } else { None };
        if worker.next_edge_ms != next_edge_ms {
            if let Some(old) = worker.next_edge_ms {
                self.window_edges.remove(&(old, worker_id.clone()));
            }
            if let Some(new) = next_edge_ms {
                self.window_edges.insert((new, worker_id.clone()));
            }
            worker.next_edge_ms = next_edge_ms;
        }
        let entries = worker.entries.clone();
        if !available {
            // A gang must not start on devices of a worker that went away,
            // closed its hours or was taken back by its owner.
            self.drop_reservations_on(&entries, true);
        }
        for entry in &entries {
            self.index.set_available(*entry, available);
        }
        if available {
            self.placement_due = true;
        }
    }

    /// A look at one job.
    pub fn job(&self, job_id: JobId) -> Option<JobView> {
        self.jobs.get(&job_id).map(|job| JobView {
            job_id,
            state: job.state,
            n_tasks: job.n_tasks,
            n_settled: job.n_settled,
            n_runs: job.task_ids(job_id).len() as u32,
        })
    }

    /// A look at one task.
    pub fn task(&self, task_id: TaskId) -> Option<TaskView> {
        self.tasks.get(&task_id).map(|task| TaskView {
            task_id,
            state: task.state,
            attempts: task.attempts,
            token: task.token,
            holder: task.holder.clone(),
            output: task.output,
        })
    }

    /// Every worker the core currently knows (connected, or holding leases
    /// while it may still reconnect), in id order.
    pub fn workers(&self) -> Vec<WorkerView> {
        let mut views: Vec<WorkerView> = self
            .workers
            .iter()
            .map(|(worker_id, worker)| WorkerView {
                worker_id: worker_id.clone(),
                connected: worker.connected,
                offer: worker.offer.clone(),
                trust: self.trust_with(worker_id, worker.trust, &worker.offer),
                paused: worker.paused,
                rtt_ms: worker.rtt_ms,
                coord: worker.coord,
                challenges: self.challenges.get(worker_id).copied().unwrap_or_default(),
                challenging: worker.challenging,
                reputation: self.reputation_of(worker_id),
                available: worker.entries.iter().any(|e| self.index.get(*e).is_some_and(|v| v.available)),
                devices_in_use: worker.entries.iter().filter_map(|e| self.index.get(*e)).map(|v| v.used).sum(),
                in_use_by_group: {
                    // Entries exist for the groups with devices, in order.
                    let mut entries = worker.entries.iter();
                    worker
                        .offer
                        .groups
                        .iter()
                        .map(|g| {
                            if g.count == 0 {
                                return 0;
                            }
                            entries.next().and_then(|e| self.index.get(*e)).map_or(0, |v| v.used)
                        })
                        .collect()
                },
                n_leases: worker.leases.len() as u32,
                last_heartbeat_ms: worker.last_heartbeat_ms,
            })
            .collect();
        views.sort_by(|a, b| a.worker_id.cmp(&b.worker_id));
        views
    }

    /// Tasks waiting for a worker, ready or backing off.
    pub fn n_queued(&self) -> usize {
        self.queue.len()
    }

    /// Why a running job's waiting tasks are not placed, or `None` when
    /// nothing holds them back (it has no waiting task, or a free device
    /// fits). Either no connected worker offers what the job needs — the
    /// reason names the constraint, e.g. `no worker offers a gpu with ≥ 24
    /// GiB in region eu; …` — or every device that fits is busy or out of
    /// its owner's hours.
    pub fn waiting_reason(&self, job_id: JobId) -> Option<String> {
        let job = self.jobs.get(&job_id)?;
        if job.state != JobState::Running {
            return None;
        }
        let waiting = job
            .task_ids(job_id)
            .into_iter()
            .filter(|id| self.tasks.get(id).is_some_and(|t| t.state == TaskState::Queued))
            .count();
        if waiting == 0 {
            return None;
        }
        let requirements = self.index.requirements(job.class)?;
        let is_gang = job.gang_latency_ms_max.is_some();
        if !is_gang && let Some(placement) = self.index.find(job.class) {
            let ready = self.queue.ready_of(job.seq).next().is_some();
            if job.verify == Verify::None || !ready || self.pick_task(job.seq, job_id, placement.entry).is_some() {
                return None;
            }
            let mut fitting: Vec<&WorkerId> = self
                .index
                .iter()
                .filter(|(_, v)| {
                    self.workers.get(v.owner).is_some_and(|w| w.connected)
                        && requirements.fits(
                            v.group,
                            v.group.count,
                            &v.terms.region,
                            v.terms.trust,
                            v.terms.price_io_per_device_hour,
                            &v.terms.software,
                        )
                })
                .map(|(_, v)| v.owner)
                .collect();
            fitting.sort_unstable();
            fitting.dedup();
            let first = self.queue.ready_of(job.seq).next().expect("checked ready");
            let model = match self.siblings(first).model {
                Some(model) => format!(" on devices of the model {model:?} its first replica ran on"),
                None => String::new(),
            };
            return Some(format!(
                "the replicas of a task run on distinct workers{model} (verify: {}), and no free worker that fits has \
                 not run its task already; {} connected workers fit",
                job.verify,
                fitting.len()
            ));
        }
        let offered =
            self.index.iter().filter(|(_, view)| self.workers.get(view.owner).is_some_and(|w| w.connected)).map(
                |(_, view)| iog_sched::explain::Offered {
                    group: view.group,
                    region: &view.terms.region,
                    trust: view.terms.trust,
                    price_io_per_device_hour: view.terms.price_io_per_device_hour,
                    software: &view.terms.software,
                },
            );
        if let Some(reason) = iog_sched::explain_unplaceable(requirements, offered) {
            return Some(reason);
        }
        if let Some(bound_ms) = job.gang_latency_ms_max {
            let held = job.reservation.as_ref().map_or(0, |r| r.entries.len());
            let free = self.index.candidates(job.class, iog_sched::gang::CANDIDATES_MAX).len();
            return Some(format!(
                "the gang of {waiting} needs {waiting} distinct workers within {bound_ms} ms of each other; \
                 {} that fit are free now, {held} of them held for it",
                free + held
            ));
        }
        let fitting: Vec<_> = self
            .index
            .iter()
            .filter(|(_, v)| {
                requirements.fits(
                    v.group,
                    v.group.count,
                    &v.terms.region,
                    v.terms.trust,
                    v.terms.price_io_per_device_hour,
                    &v.terms.software,
                )
            })
            .collect();
        let available = fitting.iter().filter(|(_, v)| v.available).count();
        Some(if available == 0 {
            format!(
                "the {} workers' devices that fit are outside their owners' hours or in use by their owners",
                fitting.len()
            )
        } else {
            format!("every device that fits is busy ({} groups on connected workers fit)", fitting.len())
        })
    }

    /// Devices the submitter's tasks hold now (the measure of fair share).
    pub fn devices_in_use_by(&self, submitter: &str) -> u64 {
        self.queue.in_use(&Submitter::from(submitter))
    }

    /// Checks the core's internal bookkeeping; tests and simulations call it
    /// after every step. Returns a description of the first broken rule.
    pub fn check_invariants(&self) -> Result<(), String> {
        for (task_id, task) in &self.tasks {
            match task.state {
                TaskState::Leased => {
                    let holder = task.holder.as_ref().ok_or(format!("{task_id} leased without holder"))?;
                    let worker = self.workers.get(holder).ok_or(format!("{task_id} held by unknown worker"))?;
                    if !worker.leases.contains(task_id) {
                        return Err(format!("{task_id} leased to {holder} but not in its leases"));
                    }
                    if task.token.is_none() {
                        return Err(format!("{task_id} leased without a token"));
                    }
                }
                _ if task.holder.is_some() => {
                    return Err(format!("{task_id} is {} but has a holder", task.state));
                }
                TaskState::Committed if task.output.is_none() => {
                    return Err(format!("{task_id} committed without output"));
                }
                _ => {}
            }
        }
        for (worker_id, worker) in &self.workers {
            for task_id in &worker.leases {
                let task = self.tasks.get(task_id).ok_or(format!("{worker_id} leases unknown {task_id}"))?;
                if task.state != TaskState::Leased || task.holder.as_ref() != Some(worker_id) {
                    return Err(format!("{worker_id} lists {task_id} which is {} elsewhere", task.state));
                }
            }
            let failing = self.challenges.get(worker_id).is_some_and(|record| record.failed_in_row > 0)
                || self.suspended_until.contains_key(worker_id);
            if (worker.challenging || worker.memory_unproven || failing)
                && worker.entries.iter().any(|entry| self.index.get(*entry).is_some_and(|view| view.available))
            {
                return Err(format!("{worker_id} is under or failed a challenge but its devices are available"));
            }
            if let Some(due_ms) = worker.next_challenge_ms
                && !self.challenges_due.contains(&(due_ms, worker_id.clone()))
            {
                return Err(format!("{worker_id}'s next challenge at {due_ms} is not listed"));
            }
        }
        for (due_ms, worker_id) in &self.challenges_due {
            if self.workers.get(worker_id).and_then(|worker| worker.next_challenge_ms) != Some(*due_ms) {
                return Err(format!("a challenge of {worker_id} is listed at {due_ms} but not due then"));
            }
        }
        for (job_id, job) in &self.jobs {
            let task_ids = job.task_ids(*job_id);
            let in_memory = task_ids.iter().filter(|id| self.tasks.contains_key(id)).count();
            if job.state.is_final() {
                if in_memory > 0 {
                    return Err(format!("{job_id} is {} but {in_memory} of its tasks are still in memory", job.state));
                }
                continue;
            }
            if in_memory != task_ids.len() {
                return Err(format!("running {job_id} has {in_memory} of its {} tasks in memory", task_ids.len()));
            }
            let settled = job.settled.iter().filter(|settled| **settled).count() as u32;
            if settled != job.n_settled {
                return Err(format!("{job_id} counts {} settled tasks, has {settled}", job.n_settled));
            }
            if job.settled.iter().skip(job.n_created as usize).any(|settled| *settled) {
                return Err(format!("{job_id} has a settled task it has not made"));
            }
            for (task_idx, settled) in (0..job.n_created).zip(&job.settled) {
                let replicas =
                    (0..job.n_replicas(task_idx)).map(|r| &self.tasks[&job.replica_id(*job_id, task_idx, r)]);
                let all_committed = replicas.clone().all(|task| task.state == TaskState::Committed);
                if *settled && !all_committed {
                    return Err(format!("task {job_id}/{task_idx} is settled but a replica of it is not committed"));
                }
                let mut workers: Vec<&WorkerId> =
                    replicas.filter_map(|task| task.holder.as_ref().or(task.committed_by.as_ref())).collect();
                let n_workers = workers.len();
                workers.sort_unstable();
                workers.dedup();
                if workers.len() != n_workers {
                    return Err(format!("two replicas of task {job_id}/{task_idx} ran on one worker"));
                }
            }
        }
        let n_queued = self.tasks.values().filter(|task| task.state == TaskState::Queued).count();
        if self.queue.len() != n_queued {
            return Err(format!("the queue holds {} tasks but {n_queued} are queued", self.queue.len()));
        }
        self.queue.check()?;
        self.index.check()?;
        // Every device an entry counts as used is held by one of its owner's
        // leases or by a gang's hold.
        let mut used: HashMap<EntryId, u32> = HashMap::new();
        for (entry, job_id) in &self.reserved_by {
            let job = self.jobs.get(job_id).ok_or(format!("a hold of unknown job {job_id}"))?;
            if !job.reservation.as_ref().is_some_and(|r| r.entries.contains(entry)) {
                return Err(format!("{job_id} does not list a hold it has"));
            }
            *used.entry(*entry).or_default() += job.devices_per_task;
        }
        for (job_id, job) in &self.jobs {
            if let Some(reservation) = &job.reservation {
                if job.state != JobState::Running {
                    return Err(format!("{job_id} is {} but holds devices", job.state));
                }
                if reservation.entries.iter().any(|e| !self.reserved_by.contains(&(*e, *job_id))) {
                    return Err(format!("{job_id} lists a hold the index does not know"));
                }
            }
        }
        for (task_id, task) in &self.tasks {
            if let Some(entry) = task.placed {
                if task.state != TaskState::Leased {
                    return Err(format!("{task_id} is {} but holds devices", task.state));
                }
                let view = self.index.get(entry).ok_or(format!("{task_id} holds devices of a removed entry"))?;
                if Some(view.owner) != task.holder.as_ref() {
                    return Err(format!("{task_id} holds devices of a worker other than its holder"));
                }
                *used.entry(entry).or_default() += self.jobs[&task_id.job_id].devices_per_task;
            }
        }
        for (entry, view) in self.index.iter() {
            let held = used.get(&entry).copied().unwrap_or(0);
            if view.used != held {
                return Err(format!(
                    "an entry of {} counts {} devices used, its leases hold {held}",
                    view.owner, view.used
                ));
            }
        }
        Ok(())
    }
}
