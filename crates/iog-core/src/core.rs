use std::collections::{BTreeSet, HashMap};

use iog_types::{JobId, JobState, LeaseToken, TaskId, TaskState, UnixMs, WorkerId};

use crate::config::Config;
use crate::event::{Action, Change, CommitOutcome, Event, NewJob, RunningTask};
use crate::model::{JobView, Snapshot, TaskView, WorkerView};
use crate::queue::{FreeWorkers, TaskQueue};

/// The store's snapshot does not describe a consistent state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreError {
    TaskOfUnknownJob(TaskId),
    LeasedWithoutHolder(TaskId),
    MissingTask(TaskId),
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
        }
    }
}

#[derive(Debug)]
struct Job {
    state: JobState,
    n_tasks: u32,
    n_committed: u32,
    max_attempts: u32,
    /// Submission order; older jobs are served first.
    seq: u64,
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
}

#[derive(Debug)]
struct Worker {
    connected: bool,
    slots: u32,
    leases: BTreeSet<TaskId>,
    last_heartbeat_ms: UnixMs,
    /// Value of the assignment counter when this worker last got a task.
    last_assigned: u64,
    in_free_set: bool,
}

/// The coordinator's state machine. See the crate documentation.
#[derive(Debug)]
pub struct Core {
    config: Config,
    jobs: HashMap<JobId, Job>,
    tasks: HashMap<TaskId, Task>,
    workers: HashMap<WorkerId, Worker>,
    queue: TaskQueue,
    free: FreeWorkers,
    /// (time the worker is declared dead, worker).
    deadlines: BTreeSet<(UnixMs, WorkerId)>,
    next_token: u64,
    next_job_seq: u64,
    n_assignments: u64,
}

impl Core {
    /// An empty coordinator.
    pub fn new(config: Config) -> Core {
        Core {
            config,
            jobs: HashMap::new(),
            tasks: HashMap::new(),
            workers: HashMap::new(),
            queue: TaskQueue::default(),
            free: FreeWorkers::default(),
            deadlines: BTreeSet::new(),
            next_token: 1,
            next_job_seq: 0,
            n_assignments: 0,
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
            core.jobs.insert(
                job.job_id,
                Job { state: job.state, n_tasks: 0, n_committed: 0, max_attempts: job.max_attempts, seq },
            );
        }
        let timeout_ms = core.config.worker_timeout_ms();
        for restored in snapshot.tasks {
            let task_id = restored.task_id;
            let job = core.jobs.get_mut(&task_id.job_id).ok_or(RestoreError::TaskOfUnknownJob(task_id))?;
            job.n_tasks += 1;
            if restored.state == TaskState::Committed {
                job.n_committed += 1;
            }
            let seq = job.seq;
            if let Some(token) = restored.token {
                core.next_token = core.next_token.max(token.0 + 1);
            }
            match restored.state {
                TaskState::Queued => core.queue.push(seq, task_id, restored.not_before_ms, now),
                TaskState::Leased => {
                    let holder = restored.holder.clone().ok_or(RestoreError::LeasedWithoutHolder(task_id))?;
                    let worker = core.workers.entry(holder.clone()).or_insert_with(|| Worker {
                        connected: false,
                        slots: 1,
                        leases: BTreeSet::new(),
                        last_heartbeat_ms: now,
                        last_assigned: 0,
                        in_free_set: false,
                    });
                    worker.leases.insert(task_id);
                    core.deadlines.insert((now + timeout_ms, holder));
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
                },
            );
        }
        for (job_id, job) in &core.jobs {
            for task_idx in 0..job.n_tasks {
                let task_id = TaskId::new(*job_id, task_idx);
                if !core.tasks.contains_key(&task_id) {
                    return Err(RestoreError::MissingTask(task_id));
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
        match event {
            Event::WorkerConnected { worker_id, slots, running } => {
                self.on_connected(worker_id, slots, &running, now, &mut out)
            }
            Event::Heartbeat { worker_id, held } => {
                self.on_heartbeat(&worker_id, now);
                self.reconcile(&worker_id, &held, now, &mut out);
            }
            Event::WorkerDisconnected { worker_id } => {
                if let Some(worker) = self.workers.get_mut(&worker_id) {
                    worker.connected = false;
                }
                self.refresh_free(&worker_id);
            }
            Event::JobSubmitted(job) => self.on_submitted(job, now, &mut out),
            Event::TaskSucceeded { worker_id, task_id, token, output, duration_ms } => {
                self.on_succeeded(worker_id, task_id, token, output, duration_ms, now, &mut out)
            }
            Event::TaskFailed { worker_id, task_id, token, error } => {
                if self.holds_current_lease(&worker_id, task_id, token) {
                    self.release_lease(task_id);
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
            Event::Tick => self.on_tick(now, &mut out),
        }
        self.queue.release_due(now);
        self.place(now, &mut out);
        out
    }

    fn on_connected(
        &mut self,
        worker_id: WorkerId,
        slots: u32,
        running: &[RunningTask],
        now: UnixMs,
        out: &mut Vec<Action>,
    ) {
        let slots = slots.clamp(1, self.config.slots_per_worker_max);
        let worker = self.workers.entry(worker_id.clone()).or_insert_with(|| Worker {
            connected: true,
            slots,
            leases: BTreeSet::new(),
            last_heartbeat_ms: now,
            last_assigned: 0,
            in_free_set: false,
        });
        worker.connected = true;
        worker.slots = slots;
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
        self.refresh_free(&worker_id);
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
        if job.inputs.is_empty() {
            out.push(reject("a job needs at least one task".to_owned()));
            return;
        }
        let Ok(n_tasks) = u32::try_from(job.inputs.len()) else {
            out.push(reject(format!("a job has at most {} tasks", u32::MAX)));
            return;
        };
        if max_attempts == 0 || max_attempts > self.config.max_attempts_limit {
            let limit = self.config.max_attempts_limit;
            out.push(reject(format!("job.max_attempts must be between 1 and {limit}, got {max_attempts}")));
            return;
        }
        let seq = self.next_job_seq;
        self.next_job_seq += 1;
        self.jobs.insert(job_id, Job { state: JobState::Running, n_tasks, n_committed: 0, max_attempts, seq });
        for (task_idx, input) in (0..n_tasks).zip(&job.inputs) {
            let task_id = TaskId::new(job_id, task_idx);
            self.tasks.insert(
                task_id,
                Task {
                    state: TaskState::Queued,
                    input: *input,
                    attempts: 0,
                    token: None,
                    holder: None,
                    not_before_ms: 0,
                    output: None,
                    unconfirmed_heartbeats: 0,
                    leased_ms: now,
                },
            );
            self.queue.push(seq, task_id, 0, now);
        }
        out.push(Action::Persist(Change::JobCreated { job, max_attempts, created_ms: now }));
        out.push(Action::JobAccepted { job_id });
    }

    #[allow(clippy::too_many_arguments)]
    fn on_succeeded(
        &mut self,
        worker_id: WorkerId,
        task_id: TaskId,
        token: LeaseToken,
        output: iog_types::BlobId,
        duration_ms: u64,
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
            self.release_lease(task_id);
            let task = self.tasks.get_mut(&task_id).expect("checked above");
            // What the worker reports is taken, but never longer than the
            // lease has lasted: run time is what a paid job is charged for.
            let duration_ms = duration_ms.min(now.saturating_sub(task.leased_ms));
            task.state = TaskState::Committed;
            task.output = Some(output);
            out.push(Action::Persist(Change::TaskCommitted {
                task_id,
                worker_id: worker_id.clone(),
                token,
                output,
                duration_ms,
                committed_ms: now,
            }));
            let job = self.jobs.get_mut(&task_id.job_id).expect("a task's job exists");
            job.n_committed += 1;
            let all_done = job.n_committed == job.n_tasks;
            out.push(Action::ResultReply { worker_id, task_id, token, outcome });
            if all_done {
                self.end_job(task_id.job_id, JobState::Done, None, now, out);
            }
        } else {
            out.push(Action::ResultReply { worker_id, task_id, token, outcome });
        }
    }

    fn on_tick(&mut self, now: UnixMs, out: &mut Vec<Action>) {
        // A worker is dead once strictly more than its timeout has passed
        // since its last heartbeat.
        while let Some((deadline, _)) = self.deadlines.first() {
            if *deadline >= now {
                break;
            }
            let (_, worker_id) = self.deadlines.pop_first().expect("first exists");
            let worker = self.workers.remove(&worker_id).expect("a deadline belongs to a known worker");
            if worker.in_free_set {
                self.free.remove(worker.last_assigned, &worker_id);
            }
            let missed = self.config.missed_heartbeats_max;
            for task_id in worker.leases {
                // An earlier lapse may have failed the job, cancelling this task.
                if !self.is_leased_to(task_id, &worker_id) {
                    continue;
                }
                // The worker entry is gone already, so only the task side remains.
                let task = self.tasks.get_mut(&task_id).expect("a lease's task exists");
                task.holder = None;
                task.state = TaskState::Queued;
                let error = format!("worker {} missed {missed} heartbeats", worker_id.short());
                self.retry_or_fail(task_id, error, now, out);
            }
            out.push(Action::WorkerDead { worker_id });
        }
    }

    /// Gives ready tasks to free workers until one of them runs out.
    fn place(&mut self, now: UnixMs, out: &mut Vec<Action>) {
        while self.queue.has_ready() {
            let Some(worker_id) = self.free.pop() else {
                break;
            };
            self.workers.get_mut(&worker_id).expect("free workers are known").in_free_set = false;
            let Some(task_id) = self.queue.pop_ready() else {
                break;
            };
            self.n_assignments += 1;
            let token = LeaseToken(self.next_token);
            self.next_token += 1;
            let task = self.tasks.get_mut(&task_id).expect("queued tasks exist");
            debug_assert_eq!(task.state, TaskState::Queued);
            task.state = TaskState::Leased;
            task.attempts += 1;
            task.token = Some(token);
            task.holder = Some(worker_id.clone());
            task.unconfirmed_heartbeats = 0;
            task.leased_ms = now;
            let worker = self.workers.get_mut(&worker_id).expect("free workers are known");
            worker.leases.insert(task_id);
            worker.last_assigned = self.n_assignments;
            out.push(Action::Persist(Change::TaskLeased {
                task_id,
                worker_id: worker_id.clone(),
                token,
                attempts: task.attempts,
            }));
            out.push(Action::Assign { worker_id: worker_id.clone(), task_id, token, input: task.input });
            self.refresh_free(&worker_id);
        }
    }

    /// Puts a task whose lease ended back in the queue, or fails it (and its
    /// job) when it has used all its attempts. The task must hold no lease.
    fn retry_or_fail(&mut self, task_id: TaskId, error: String, now: UnixMs, out: &mut Vec<Action>) {
        let job = self.jobs.get(&task_id.job_id).expect("a task's job exists");
        debug_assert_eq!(job.state, JobState::Running, "only tasks of running jobs are retried");
        let (max_attempts, seq) = (job.max_attempts, job.seq);
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
            self.queue.push(seq, task_id, not_before_ms, now);
        }
    }

    /// Ends a running job: every task not final is cancelled and its holder told to stop.
    fn end_job(&mut self, job_id: JobId, state: JobState, reason: Option<String>, now: UnixMs, out: &mut Vec<Action>) {
        let job = self.jobs.get_mut(&job_id).expect("the job exists");
        job.state = state;
        let (n_tasks, seq) = (job.n_tasks, job.seq);
        for task_idx in 0..n_tasks {
            let task_id = TaskId::new(job_id, task_idx);
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
        for task_idx in 0..n_tasks {
            self.tasks.remove(&TaskId::new(job_id, task_idx));
        }
        out.push(Action::Persist(Change::JobEnded { job_id, state, reason, ended_ms: now }));
        out.push(Action::JobFinished { job_id, state });
    }

    fn is_leased_to(&self, task_id: TaskId, worker_id: &WorkerId) -> bool {
        self.tasks
            .get(&task_id)
            .is_some_and(|task| task.state == TaskState::Leased && task.holder.as_ref() == Some(worker_id))
    }

    fn holds_current_lease(&self, worker_id: &WorkerId, task_id: TaskId, token: LeaseToken) -> bool {
        self.tasks.get(&task_id).is_some_and(|task| {
            task.state == TaskState::Leased && task.token == Some(token) && task.holder.as_ref() == Some(worker_id)
        })
    }

    /// Detaches a leased task from its holder; the caller decides its next state.
    fn release_lease(&mut self, task_id: TaskId) {
        let task = self.tasks.get_mut(&task_id).expect("the task exists");
        let holder = task.holder.take();
        task.state = TaskState::Queued;
        if let Some(holder) = holder {
            if let Some(worker) = self.workers.get_mut(&holder) {
                worker.leases.remove(&task_id);
            }
            self.refresh_free(&holder);
        }
    }

    /// Keeps the free-worker set in step with a worker's connection and leases.
    fn refresh_free(&mut self, worker_id: &WorkerId) {
        let Some(worker) = self.workers.get_mut(worker_id) else {
            return;
        };
        let should_be_free = worker.connected && (worker.leases.len() as u64) < u64::from(worker.slots);
        if worker.in_free_set {
            self.free.remove(worker.last_assigned, worker_id);
        }
        if should_be_free {
            self.free.insert(worker.last_assigned, worker_id.clone());
        }
        worker.in_free_set = should_be_free;
    }

    /// A look at one job.
    pub fn job(&self, job_id: JobId) -> Option<JobView> {
        self.jobs.get(&job_id).map(|job| JobView {
            job_id,
            state: job.state,
            n_tasks: job.n_tasks,
            n_committed: job.n_committed,
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
                slots: worker.slots,
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
        }
        for (job_id, job) in &self.jobs {
            let in_memory = (0..job.n_tasks).filter(|idx| self.tasks.contains_key(&TaskId::new(*job_id, *idx))).count();
            if job.state.is_final() {
                if in_memory > 0 {
                    return Err(format!("{job_id} is {} but {in_memory} of its tasks are still in memory", job.state));
                }
                continue;
            }
            if in_memory != job.n_tasks as usize {
                return Err(format!("running {job_id} has {in_memory} of its {} tasks in memory", job.n_tasks));
            }
            let committed = (0..job.n_tasks)
                .filter(|idx| self.tasks[&TaskId::new(*job_id, *idx)].state == TaskState::Committed)
                .count() as u32;
            if committed != job.n_committed {
                return Err(format!("{job_id} counts {} committed tasks, has {committed}", job.n_committed));
            }
        }
        if self.queue.len() > self.tasks.values().filter(|task| task.state == TaskState::Queued).count() {
            return Err("the queue holds tasks that are not queued".to_owned());
        }
        Ok(())
    }
}
