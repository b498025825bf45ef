//! A model of the coordinator's store: what survives a crash.
//!
//! It applies the core's [`Change`]s with the same meaning as the SQLite
//! store and refuses any change that would break a storage-level rule, so
//! the simulation checks the store's invariants on every write.

use std::collections::BTreeMap;

use iog_core::{Change, RestoredJob, RestoredTask, Snapshot};
use iog_types::{BlobId, JobId, JobState, LeaseToken, TaskId, TaskState, WorkerId};

use crate::Violation;

#[derive(Debug, Clone)]
struct Job {
    state: JobState,
    max_attempts: u32,
    created_ms: u64,
    n_tasks: u32,
}

#[derive(Debug, Clone)]
struct Task {
    state: TaskState,
    input: BlobId,
    attempts: u32,
    token: Option<LeaseToken>,
    holder: Option<WorkerId>,
    not_before_ms: u64,
}

/// A committed result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    pub worker_id: WorkerId,
    pub token: LeaseToken,
    pub output: BlobId,
    pub duration_ms: u64,
}

/// What the store holds. See the module documentation.
#[derive(Debug, Clone, Default)]
pub struct DurableModel {
    jobs: BTreeMap<JobId, Job>,
    tasks: BTreeMap<TaskId, Task>,
    commits: BTreeMap<TaskId, Commit>,
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
            Change::JobCreated { job, max_attempts, created_ms } => {
                if self.jobs.contains_key(&job.job_id) {
                    return Err(Violation::new("store-consistent", format!("job {} created twice", job.job_id)));
                }
                let n_tasks = job.inputs.len() as u32;
                self.jobs.insert(
                    job.job_id,
                    Job { state: JobState::Running, max_attempts: *max_attempts, created_ms: *created_ms, n_tasks },
                );
                for (task_idx, input) in (0..n_tasks).zip(&job.inputs) {
                    let task = Task {
                        state: TaskState::Queued,
                        input: *input,
                        attempts: 0,
                        token: None,
                        holder: None,
                        not_before_ms: 0,
                    };
                    self.tasks.insert(TaskId::new(job.job_id, task_idx), task);
                }
            }
            Change::TaskLeased { task_id, worker_id, token, attempts } => {
                let task = self.task_mut(task_id)?;
                if task.token.is_some_and(|last| *token <= last) {
                    let last = task.token.expect("checked");
                    return Err(Violation::new("fencing", format!("{task_id} leased with token {token} after {last}")));
                }
                if task.state != TaskState::Queued {
                    return Err(Violation::new("one-lease", format!("{task_id} leased while {}", task.state)));
                }
                task.state = TaskState::Leased;
                task.token = Some(*token);
                task.holder = Some(worker_id.clone());
                task.attempts = *attempts;
            }
            Change::TaskCommitted { task_id, worker_id, token, output, duration_ms, .. } => {
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
                task.state = TaskState::Committed;
                task.holder = None;
                let commit =
                    Commit { worker_id: worker_id.clone(), token: *token, output: *output, duration_ms: *duration_ms };
                self.commits.insert(*task_id, commit);
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
                let mut n_committed = 0;
                for task_idx in 0..n_tasks {
                    let task = self.task_mut(&TaskId::new(*job_id, task_idx))?;
                    if matches!(task.state, TaskState::Queued | TaskState::Leased) {
                        task.state = TaskState::Cancelled;
                        task.holder = None;
                    }
                    n_committed += u32::from(task.state == TaskState::Committed);
                }
                if *state == JobState::Done && n_committed != n_tasks {
                    return Err(Violation::new(
                        "store-consistent",
                        format!("{job_id} done with {n_committed} of {n_tasks} tasks committed"),
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
                job_id: *job_id,
                state: job.state,
                max_attempts: job.max_attempts,
                created_ms: job.created_ms,
            });
            for task_idx in 0..job.n_tasks {
                let task_id = TaskId::new(*job_id, task_idx);
                let task = &self.tasks[&task_id];
                snapshot.tasks.push(RestoredTask {
                    task_id,
                    state: task.state,
                    input: task.input,
                    attempts: task.attempts,
                    token: task.token,
                    holder: task.holder.clone(),
                    not_before_ms: task.not_before_ms,
                    output: self.commits.get(&task_id).map(|c| c.output),
                });
            }
        }
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

    /// The stored lease of a task, if it is leased.
    pub fn lease(&self, task_id: TaskId) -> Option<(WorkerId, LeaseToken)> {
        let task = self.tasks.get(&task_id)?;
        match (task.state, &task.holder, task.token) {
            (TaskState::Leased, Some(holder), Some(token)) => Some((holder.clone(), token)),
            _ => None,
        }
    }
}
