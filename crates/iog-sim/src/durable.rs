//! A model of the coordinator's store: what survives a crash.
//!
//! It applies the core's [`Change`]s with the same meaning as the SQLite
//! store and refuses any change that would break a storage-level rule, so
//! the simulation checks the store's invariants on every write.

use std::collections::BTreeMap;

use iog_core::{Change, RestoredJob, RestoredTask, Snapshot};
use iog_ledger::Amount;
use iog_sched::Requirements;
use iog_types::{BlobId, JobId, JobState, LeaseToken, TaskId, TaskState, Verify, WorkerId};

use crate::Violation;
use crate::cheat::{agreement_class, chain_next};

#[derive(Debug, Clone)]
struct Job {
    state: JobState,
    max_attempts: u32,
    created_ms: u64,
    n_tasks: u32,
    requirements: Requirements,
    submitter: String,
    task_timeout_ms: Option<u64>,
    verify: Verify,
    /// Tasks a link of a chained job holds (0: not chained); its links are
    /// made one after another, each from the one before.
    chain_width: u32,
}

#[derive(Debug, Clone)]
struct Task {
    state: TaskState,
    input: BlobId,
    attempts: u32,
    token: Option<LeaseToken>,
    holder: Option<WorkerId>,
    not_before_ms: u64,
    /// What the current (or last) lease pays per hour.
    price_io_per_hour: Amount,
    /// For a task (replica 0): the accepted result, once settled.
    verified_output: Option<BlobId>,
}

/// A committed result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub worker_id: WorkerId,
    pub token: LeaseToken,
    pub output: BlobId,
    pub duration_ms: u64,
    /// What the committing lease paid per hour.
    pub price_io_per_hour: Amount,
    /// Verification's verdict: accepted (paid) or proven wrong; `None`
    /// until its task is settled.
    pub verdict: Option<bool>,
    /// The model it ran on, for jobs whose replicas keep to one model.
    pub model: Option<String>,
}

impl Task {
    fn queued(input: BlobId) -> Task {
        Task {
            state: TaskState::Queued,
            input,
            attempts: 0,
            token: None,
            holder: None,
            not_before_ms: 0,
            price_io_per_hour: Amount::ZERO,
            verified_output: None,
        }
    }
}

/// What the store holds. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct DurableModel {
    jobs: BTreeMap<JobId, Job>,
    tasks: BTreeMap<TaskId, Task>,
    commits: BTreeMap<TaskId, Commit>,
    workers: BTreeMap<WorkerId, iog_core::WorkerRecord>,
}

impl DurableModel {
    /// Applies one transaction's changes in order.
    pub fn apply(&mut self, changes: &[Change]) -> Result<(), Violation> {
        for change in changes {
            self.apply_one(change)?;
        }
        Ok(())
    }

    fn task_mut(&mut self, task_id: &TaskId) -> Result<&mut Task, Violation> {
        self.tasks
            .get_mut(task_id)
            .ok_or_else(|| Violation::new("store-consistent", format!("change to unknown task {task_id}")))
    }

    fn apply_one(&mut self, change: &Change) -> Result<(), Violation> {
        match change {
            Change::WorkerRecorded { worker_id, record } => {
                self.workers.insert(worker_id.clone(), *record);
            }
            Change::JobCreated { job, max_attempts, created_ms } => {
                if self.jobs.contains_key(&job.job_id) {
                    return Err(Violation::new("store-consistent", format!("job {} created twice", job.job_id)));
                }
                let n_made = job.inputs.len() as u32;
                let n_tasks = job.chain.unwrap_or(n_made);
                self.jobs.insert(
                    job.job_id,
                    Job {
                        state: JobState::Running,
                        max_attempts: *max_attempts,
                        created_ms: *created_ms,
                        n_tasks,
                        requirements: job.requirements.clone(),
                        submitter: job.submitter.clone(),
                        task_timeout_ms: job.task_timeout_ms,
                        verify: job.verify,
                        chain_width: if job.chain.is_some() { n_made } else { 0 },
                    },
                );
                for (task_idx, input) in (0..n_made).zip(&job.inputs) {
                    self.tasks.insert(TaskId::new(job.job_id, task_idx), Task::queued(*input));
                }
            }
            Change::TaskAdded { task_id, input } => {
                let job = self.jobs.get(&task_id.job_id).ok_or_else(|| {
                    Violation::new("store-consistent", format!("replica {task_id} of an unknown job"))
                })?;
                let (task_idx, replica) = iog_types::replica_of(job.n_tasks, task_id.task_idx);
                if job.chain_width > 0 && replica == 0 {
                    // `chain-in-order`: the next link of a chain is made
                    // only once every task of the link before is settled,
                    // from their accepted outputs.
                    let width = job.chain_width;
                    let link_start = task_idx / width * width;
                    let before: Option<Vec<BlobId>> = link_start.checked_sub(width).and_then(|first| {
                        (first..link_start)
                            .map(|idx| self.tasks.get(&TaskId::new(task_id.job_id, idx))?.verified_output)
                            .collect()
                    });
                    if job.state != JobState::Running || before.is_none() {
                        return Err(Violation::new(
                            "chain-in-order",
                            format!("{task_id} made before every task of the link before it was settled"),
                        ));
                    }
                    if before.map(|outputs| chain_next(&outputs, task_idx - link_start)) != Some(*input) {
                        return Err(Violation::new(
                            "chain-in-order",
                            format!("{task_id} made from other outputs than the accepted ones of the link before"),
                        ));
                    }
                    if self.tasks.insert(*task_id, Task::queued(*input)).is_some() {
                        return Err(Violation::new("store-consistent", format!("{task_id} made twice")));
                    }
                    return Ok(());
                }
                if job.state != JobState::Running || replica == 0 || replica >= job.verify.replicas_max() {
                    return Err(Violation::new(
                        "replicas",
                        format!(
                            "replica {replica} of {} added to a {} job verifying {}",
                            task_idx, job.state, job.verify
                        ),
                    ));
                }
                let original = self.tasks.get(&TaskId::new(task_id.job_id, task_idx)).map(|task| task.input);
                if original != Some(*input) {
                    return Err(Violation::new("replicas", format!("replica {task_id} runs another input")));
                }
                if self.tasks.insert(*task_id, Task::queued(*input)).is_some() {
                    return Err(Violation::new("store-consistent", format!("replica {task_id} added twice")));
                }
            }
            Change::TaskVerified { task_id, output, valid, wrong } => {
                let task = self.task_mut(task_id)?;
                if task.verified_output.is_some() {
                    return Err(Violation::new("verify-once", format!("{task_id} verified twice")));
                }
                task.verified_output = Some(*output);
                // Outputs agree when they stand for one result: the right
                // one in either precision.
                let input = task.input;
                let agrees = |other: BlobId| agreement_class(input, other) == agreement_class(input, *output);
                let results = valid
                    .iter()
                    .map(|r| (r.task_id, &r.worker_id, true))
                    .chain(wrong.iter().map(|r| (r.task_id, &r.worker_id, false)));
                for (replica_id, worker_id, accepted) in results {
                    let commit = self.commits.get_mut(&replica_id).ok_or_else(|| {
                        Violation::new(
                            "verify",
                            format!("{task_id} judged replica {replica_id}, which never committed"),
                        )
                    })?;
                    if commit.verdict.is_some() || commit.worker_id != *worker_id || agrees(commit.output) != accepted {
                        return Err(Violation::new(
                            "verify",
                            format!(
                                "{task_id}: replica {replica_id} of {worker_id} judged {accepted} against its commit {commit:?}"
                            ),
                        ));
                    }
                    commit.verdict = Some(accepted);
                }
            }
            Change::TaskLeased { task_id, worker_id, token, attempts, price_io_per_hour } => {
                let task = self.task_mut(task_id)?;
                if task.token.is_some_and(|last| *token <= last) {
                    let last = task.token.expect("checked");
                    return Err(Violation::new("fencing", format!("{task_id} leased with token {token} after {last}")));
                }
                if task.state != TaskState::Queued {
                    return Err(Violation::new("one-lease", format!("{task_id} leased while {}", task.state)));
                }
                if *attempts != task.attempts + 1 {
                    return Err(Violation::new(
                        "attempts",
                        format!("{task_id} leased as attempt {attempts} after {} attempts", task.attempts),
                    ));
                }
                task.state = TaskState::Leased;
                task.token = Some(*token);
                task.holder = Some(worker_id.clone());
                task.attempts = *attempts;
                task.price_io_per_hour = *price_io_per_hour;
            }
            Change::TaskCommitted {
                task_id, worker_id, token, output, duration_ms, price_io_per_hour, model, ..
            } => {
                if let Some(commit) = self.commits.get(task_id) {
                    let rule = if commit.output == *output { "commit-once" } else { "result-stable" };
                    return Err(Violation::new(
                        rule,
                        format!("{task_id} committed again by {worker_id} token {token}"),
                    ));
                }
                let task = self.task_mut(task_id)?;
                if task.state != TaskState::Leased
                    || task.token != Some(*token)
                    || task.holder.as_ref() != Some(worker_id)
                {
                    return Err(Violation::new(
                        "fencing",
                        format!(
                            "{task_id} committed by {worker_id} token {token} but the stored lease is {:?} of {:?} ({})",
                            task.token, task.holder, task.state
                        ),
                    ));
                }
                if task.price_io_per_hour != *price_io_per_hour {
                    return Err(Violation::new(
                        "price",
                        format!(
                            "{task_id} committed at {price_io_per_hour} per hour, its lease's price is {}",
                            task.price_io_per_hour
                        ),
                    ));
                }
                task.state = TaskState::Committed;
                task.holder = None;
                let commit = Commit {
                    worker_id: worker_id.clone(),
                    token: *token,
                    output: *output,
                    duration_ms: *duration_ms,
                    price_io_per_hour: *price_io_per_hour,
                    verdict: None,
                    model: model.clone(),
                };
                self.commits.insert(*task_id, commit);
            }
            Change::ResultRejected { task_id, worker_id, output, .. } => {
                let commit = self
                    .commits
                    .get_mut(task_id)
                    .ok_or_else(|| Violation::new("verify", format!("{task_id} rejected but never committed")))?;
                if commit.verdict.is_some() || commit.worker_id != *worker_id || commit.output != *output {
                    return Err(Violation::new(
                        "verify",
                        format!("{task_id}: the result of {worker_id} rejected against its commit {commit:?}"),
                    ));
                }
                commit.verdict = Some(false);
            }
            Change::TaskYielded { task_id, attempts, .. } => {
                let task = self.task_mut(task_id)?;
                if task.state != TaskState::Leased {
                    return Err(Violation::new("yield", format!("{task_id} yielded while {}", task.state)));
                }
                // The yielded attempt is not counted: the count drops back
                // by exactly that one, and never grows.
                if *attempts + 1 != task.attempts {
                    return Err(Violation::new(
                        "yield",
                        format!("{task_id} yielded with {attempts} attempts after its lease's {}", task.attempts),
                    ));
                }
                task.state = TaskState::Queued;
                task.holder = None;
                task.attempts = *attempts;
                task.not_before_ms = 0;
            }
            Change::TaskRequeued { task_id, not_before_ms, .. } => {
                let task = self.task_mut(task_id)?;
                task.state = TaskState::Queued;
                task.holder = None;
                task.not_before_ms = *not_before_ms;
            }
            Change::TaskFailed { task_id, .. } => {
                let task = self.task_mut(task_id)?;
                task.state = TaskState::Failed;
                task.holder = None;
            }
            Change::JobEnded { job_id, state, .. } => {
                let job = self
                    .jobs
                    .get_mut(job_id)
                    .ok_or_else(|| Violation::new("store-consistent", format!("unknown job {job_id} ended")))?;
                if job.state.is_final() {
                    return Err(Violation::new("store-consistent", format!("{job_id} ended twice")));
                }
                job.state = *state;
                let n_tasks = job.n_tasks;
                let mut n_settled = 0;
                for (task_id, task) in self.tasks.range_mut(TaskId::new(*job_id, 0)..=TaskId::new(*job_id, u32::MAX)) {
                    if matches!(task.state, TaskState::Queued | TaskState::Leased) {
                        task.state = TaskState::Cancelled;
                        task.holder = None;
                    }
                    n_settled += u32::from(task_id.task_idx < n_tasks && task.verified_output.is_some());
                }
                if *state == JobState::Done && n_settled != n_tasks {
                    return Err(Violation::new(
                        "store-consistent",
                        format!("{job_id} done with {n_settled} of {n_tasks} tasks settled"),
                    ));
                }
            }
        }
        Ok(())
    }

    /// What a restarting coordinator reads: running jobs and their tasks.
    pub fn snapshot(&self) -> Snapshot {
        let mut snapshot = Snapshot::default();
        for (job_id, job) in &self.jobs {
            if job.state != JobState::Running {
                continue;
            }
            snapshot.jobs.push(RestoredJob {
                chain_width: job.chain_width,
                job_id: *job_id,
                state: job.state,
                max_attempts: job.max_attempts,
                created_ms: job.created_ms,
                requirements: job.requirements.clone(),
                submitter: job.submitter.clone(),
                task_timeout_ms: job.task_timeout_ms,
                n_tasks: job.n_tasks,
                verify: job.verify,
            });
            for (task_id, task) in self.tasks.range(TaskId::new(*job_id, 0)..=TaskId::new(*job_id, u32::MAX)) {
                let task_id = *task_id;
                let commit = self.commits.get(&task_id);
                snapshot.tasks.push(RestoredTask {
                    task_id,
                    state: task.state,
                    input: task.input,
                    attempts: task.attempts,
                    token: task.token,
                    holder: task.holder.clone(),
                    not_before_ms: task.not_before_ms,
                    output: commit.map(|c| c.output),
                    price_io_per_hour: task.price_io_per_hour,
                    committed_by: commit.map(|c| c.worker_id.clone()),
                    duration_ms: commit.map_or(0, |c| c.duration_ms),
                    accepted: task.verified_output,
                    verdict: commit.and_then(|c| c.verdict),
                    model: commit.and_then(|c| c.model.clone()),
                });
            }
        }
        snapshot.workers = self.workers.iter().map(|(worker_id, record)| (worker_id.clone(), *record)).collect();
        snapshot
    }

    pub fn has_job(&self, job_id: JobId) -> bool {
        self.jobs.contains_key(&job_id)
    }

    pub fn job_state(&self, job_id: JobId) -> Option<JobState> {
        self.jobs.get(&job_id).map(|job| job.state)
    }

    pub fn commit(&self, task_id: TaskId) -> Option<&Commit> {
        self.commits.get(&task_id)
    }

    pub fn n_commits(&self) -> usize {
        self.commits.len()
    }

    /// The tasks whose stored lease `worker_id` holds (a walk over every task).
    pub fn leases_held_by(&self, worker_id: &WorkerId) -> Vec<TaskId> {
        self.tasks
            .iter()
            .filter(|(_, task)| task.state == TaskState::Leased && task.holder.as_ref() == Some(worker_id))
            .map(|(task_id, _)| *task_id)
            .collect()
    }

    /// Each task and replica of a job: its state and, while leased, its holder.
    pub fn tasks_of(&self, job_id: JobId) -> Vec<(TaskId, TaskState, Option<&WorkerId>)> {
        self.tasks
            .range(TaskId::new(job_id, 0)..=TaskId::new(job_id, u32::MAX))
            .map(|(task_id, task)| (*task_id, task.state, task.holder.as_ref()))
            .collect()
    }

    /// The stored input of a task (or replica), if it was made.
    pub fn input(&self, task_id: TaskId) -> Option<BlobId> {
        self.tasks.get(&task_id).map(|task| task.input)
    }

    /// A job's tasks in plan order (replicas not counted).
    pub fn n_tasks(&self, job_id: JobId) -> u32 {
        self.jobs.get(&job_id).map_or(0, |job| job.n_tasks)
    }

    /// The accepted result of a task (replica 0), once settled.
    pub fn verified_output(&self, task_id: TaskId) -> Option<BlobId> {
        self.tasks.get(&task_id)?.verified_output
    }

    /// Every commit of a job, replicas included.
    pub fn commits_of(&self, job_id: JobId) -> impl Iterator<Item = (&TaskId, &Commit)> + '_ {
        self.commits.range(TaskId::new(job_id, 0)..=TaskId::new(job_id, u32::MAX))
    }

    /// A worker's streak of confirmed results as the store holds it.
    pub fn valid_streak(&self, worker_id: &WorkerId) -> u64 {
        self.workers.get(worker_id).map_or(0, |record| record.reputation.valid_streak)
    }

    /// The stored lease of a task, if it is leased.
    pub fn lease(&self, task_id: TaskId) -> Option<(WorkerId, LeaseToken)> {
        let task = self.tasks.get(&task_id)?;
        match (task.state, &task.holder, task.token) {
            (TaskState::Leased, Some(holder), Some(token)) => Some((holder.clone(), token)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use iog_core::NewJob;

    use super::*;

    fn created(n_tasks: u32) -> (DurableModel, TaskId) {
        let job_id = JobId(1);
        let job = NewJob {
            chain: None,
            job_id,
            name: "j".into(),
            workload: "sim".into(),
            spec_json: Vec::new(),
            max_attempts: None,
            task_timeout_ms: None,
            inputs: (0..n_tasks).map(|idx| BlobId::of(&idx.to_le_bytes())).collect(),
            requirements: Requirements::default(),
            submitter: "payer-a".into(),
            verify: Verify::None,
            sealed: false,
            assets: Vec::new(),
        };
        let mut model = DurableModel::default();
        model.apply(&[Change::JobCreated { job: Box::new(job), max_attempts: 5, created_ms: 0 }]).unwrap();
        (model, TaskId::new(job_id, 0))
    }

    fn leased(task_id: TaskId, token: u64, attempts: u32) -> Change {
        Change::TaskLeased {
            task_id,
            worker_id: WorkerId("w0".into()),
            token: LeaseToken(token),
            attempts,
            price_io_per_hour: Amount::from_base_units(7),
        }
    }

    fn yielded(task_id: TaskId, attempts: u32) -> Change {
        Change::TaskYielded { task_id, attempts, reason: "owner".into() }
    }

    #[test]
    fn a_yield_requeues_at_once_and_gives_the_attempt_back() {
        let (mut model, task_id) = created(1);
        model.apply(&[leased(task_id, 1, 1), yielded(task_id, 0), leased(task_id, 2, 1)]).unwrap();
        let snapshot = model.snapshot();
        assert_eq!(snapshot.jobs[0].submitter, "payer-a");
        let task = &snapshot.tasks[0];
        assert_eq!((task.state, task.attempts, task.not_before_ms), (TaskState::Leased, 1, 0));
        assert_eq!(task.price_io_per_hour, Amount::from_base_units(7));
        assert_eq!(model.leases_held_by(&WorkerId("w0".into())), vec![task_id]);
    }

    #[test]
    fn only_a_leased_task_is_yielded_and_never_with_more_attempts() {
        let (mut model, task_id) = created(1);
        assert_eq!(model.clone().apply(&[yielded(task_id, 0)]).unwrap_err().rule, "yield");
        model.apply(&[leased(task_id, 1, 1)]).unwrap();
        assert_eq!(model.clone().apply(&[yielded(task_id, 1)]).unwrap_err().rule, "yield");
        assert_eq!(model.clone().apply(&[yielded(task_id, 2)]).unwrap_err().rule, "yield");
        model.apply(&[yielded(task_id, 0)]).unwrap();
        assert_eq!(model.apply(&[yielded(task_id, 0)]).unwrap_err().rule, "yield");
    }

    #[test]
    fn each_lease_counts_one_attempt_and_commits_pay_the_lease_price() {
        let (mut model, task_id) = created(1);
        assert_eq!(model.clone().apply(&[leased(task_id, 1, 2)]).unwrap_err().rule, "attempts");
        model.apply(&[leased(task_id, 1, 1)]).unwrap();
        let commit = |price| Change::TaskCommitted {
            task_id,
            worker_id: WorkerId("w0".into()),
            token: LeaseToken(1),
            output: BlobId::of(b"out"),
            duration_ms: 10,
            committed_ms: 10,
            price_io_per_hour: Amount::from_base_units(price),
            device: "cpu0".into(),
            model: None,
        };
        assert_eq!(model.clone().apply(&[commit(8)]).unwrap_err().rule, "price");
        model.apply(&[commit(7)]).unwrap();
        assert_eq!(model.commit(task_id).unwrap().price_io_per_hour, Amount::from_base_units(7));
    }
}
