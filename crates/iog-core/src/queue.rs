use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use iog_sched::FairShare;
use iog_types::{JobId, TaskId, UnixMs};

/// Who submitted a job: the paying wallet's address, or the empty name for
/// free jobs. Fair share is kept between submitters.
pub(crate) type Submitter = Arc<str>;

#[derive(Debug)]
struct ReadyJob {
    job_id: JobId,
    submitter: Submitter,
    /// Tasks in the job's plan: a task index modulo this is the task a
    /// replica runs.
    n_tasks: u32,
    /// Ready tasks by (task they run, index): a task's replicas come right
    /// after it rather than after every other task of the job.
    tasks: BTreeSet<(u32, u32)>,
}

impl ReadyJob {
    fn key(&self, task_idx: u32) -> (u32, u32) {
        (task_idx % self.n_tasks.max(1), task_idx)
    }
}

/// Tasks waiting for a device: ready ones grouped by job and by submitter,
/// and ones whose retry backoff has not ended yet, by the time it ends.
///
/// Which task goes next is the fair-share policy of [`iog_sched::fair`]:
/// the submitter holding the fewest devices among those with ready work,
/// then that submitter's oldest job, then the job's lowest task (a task's
/// replicas of verification right after it, so a task is settled, and
/// paid, without waiting for the rest of its job).
#[derive(Debug, Default)]
pub(crate) struct TaskQueue {
    /// Jobs with ready tasks, by job sequence number.
    ready: BTreeMap<u64, ReadyJob>,
    /// Each submitter's jobs with ready tasks, oldest first.
    by_submitter: HashMap<Submitter, BTreeSet<u64>>,
    /// (not before, job sequence number, task).
    delayed: BTreeSet<(UnixMs, u64, TaskId)>,
    fair: FairShare<Submitter>,
    n_ready: usize,
}

impl TaskQueue {
    /// Queues a task of the job with sequence number `job_seq` and
    /// `n_tasks` tasks in its plan, ready at `not_before_ms`.
    pub(crate) fn push(
        &mut self,
        job_seq: u64,
        submitter: &Submitter,
        n_tasks: u32,
        task_id: TaskId,
        not_before_ms: UnixMs,
        now: UnixMs,
    ) {
        if not_before_ms <= now {
            self.push_ready(job_seq, submitter.clone(), n_tasks, task_id);
        } else {
            self.delayed.insert((not_before_ms, job_seq, task_id));
        }
    }

    fn push_ready(&mut self, job_seq: u64, submitter: Submitter, n_tasks: u32, task_id: TaskId) {
        let job = self.ready.entry(job_seq).or_insert_with(|| ReadyJob {
            job_id: task_id.job_id,
            submitter: submitter.clone(),
            n_tasks,
            tasks: BTreeSet::new(),
        });
        let key = job.key(task_id.task_idx);
        if job.tasks.insert(key) {
            self.n_ready += 1;
        }
        let jobs = self.by_submitter.entry(submitter.clone()).or_default();
        if jobs.insert(job_seq) && jobs.len() == 1 {
            self.fair.set_waiting(&submitter, true);
        }
    }

    /// Moves every task whose backoff ended by `now` to the ready set, with
    /// the submitter and plan size of its job as `job_of` says. Returns how
    /// many moved.
    pub(crate) fn release_due(&mut self, now: UnixMs, job_of: impl Fn(JobId) -> (Submitter, u32)) -> usize {
        let mut n = 0;
        while let Some(&(not_before, seq, task_id)) = self.delayed.first() {
            if not_before > now {
                break;
            }
            self.delayed.pop_first();
            let (submitter, n_tasks) = job_of(task_id.job_id);
            self.push_ready(seq, submitter, n_tasks, task_id);
            n += 1;
        }
        n
    }

    /// Submitters with ready work, whose turn it is first.
    pub(crate) fn next_submitter(&self, skip: impl Fn(&Submitter) -> bool) -> Option<Submitter> {
        self.fair.next_where(skip).cloned()
    }

    /// A submitter's jobs with ready tasks, oldest first: (sequence number, job).
    pub(crate) fn ready_jobs_of(&self, submitter: &Submitter) -> impl Iterator<Item = (u64, JobId)> + '_ {
        self.by_submitter.get(submitter).into_iter().flatten().map(|seq| (*seq, self.ready[seq].job_id))
    }

    /// Ready tasks of a job.
    pub(crate) fn ready_count(&self, job_seq: u64) -> usize {
        self.ready.get(&job_seq).map_or(0, |job| job.tasks.len())
    }

    /// Takes the next ready task of a job.
    pub(crate) fn pop_ready_of(&mut self, job_seq: u64) -> Option<TaskId> {
        let job = self.ready.get_mut(&job_seq)?;
        let (_, task_idx) = job.tasks.pop_first()?;
        let task_id = TaskId::new(job.job_id, task_idx);
        self.n_ready -= 1;
        if job.tasks.is_empty() {
            self.forget_ready_job(job_seq);
        }
        Some(task_id)
    }

    /// A job's ready tasks in the order they are served.
    pub(crate) fn ready_of(&self, job_seq: u64) -> impl Iterator<Item = TaskId> + '_ {
        self.ready
            .get(&job_seq)
            .into_iter()
            .flat_map(|job| job.tasks.iter().map(|(_, idx)| TaskId::new(job.job_id, *idx)))
    }

    /// Takes one ready task of a job, out of turn.
    pub(crate) fn take_ready(&mut self, job_seq: u64, task_id: TaskId) -> bool {
        let Some(job) = self.ready.get_mut(&job_seq) else { return false };
        let key = job.key(task_id.task_idx);
        if !job.tasks.remove(&key) {
            return false;
        }
        self.n_ready -= 1;
        if job.tasks.is_empty() {
            self.forget_ready_job(job_seq);
        }
        true
    }

    fn forget_ready_job(&mut self, job_seq: u64) {
        let Some(job) = self.ready.remove(&job_seq) else { return };
        if let Some(jobs) = self.by_submitter.get_mut(&job.submitter) {
            jobs.remove(&job_seq);
            if jobs.is_empty() {
                self.by_submitter.remove(&job.submitter);
                self.fair.set_waiting(&job.submitter, false);
            }
        }
    }

    /// Devices now run `submitter`'s tasks (`n` more) …
    pub(crate) fn add_use(&mut self, submitter: &Submitter, n: u32) {
        self.fair.add_use(submitter, u64::from(n));
    }

    /// … or no longer do.
    pub(crate) fn remove_use(&mut self, submitter: &Submitter, n: u32) {
        self.fair.remove_use(submitter, u64::from(n));
    }

    /// Devices the submitter's tasks hold now.
    pub(crate) fn in_use(&self, submitter: &Submitter) -> u64 {
        self.fair.in_use(submitter)
    }

    pub(crate) fn has_ready(&self) -> bool {
        self.n_ready > 0
    }

    /// Removes a task wherever it waits (used when its job ends).
    pub(crate) fn remove(&mut self, job_seq: u64, task_id: TaskId, not_before_ms: UnixMs) {
        self.delayed.remove(&(not_before_ms, job_seq, task_id));
        if let Some(job) = self.ready.get_mut(&job_seq) {
            let key = job.key(task_id.task_idx);
            if job.tasks.remove(&key) {
                self.n_ready -= 1;
            }
            if job.tasks.is_empty() {
                self.forget_ready_job(job_seq);
            }
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.n_ready + self.delayed.len()
    }

    /// Checks the queue's bookkeeping.
    pub(crate) fn check(&self) -> Result<(), String> {
        self.fair.check()?;
        let counted: usize = self.ready.values().map(|job| job.tasks.len()).sum();
        if counted != self.n_ready {
            return Err(format!("the queue counts {} ready tasks but holds {counted}", self.n_ready));
        }
        for (seq, job) in &self.ready {
            if job.tasks.is_empty() {
                return Err(format!("ready job {} has no ready task", job.job_id));
            }
            if !self.by_submitter.get(&job.submitter).is_some_and(|jobs| jobs.contains(seq)) {
                return Err(format!("ready job {} is not listed under its submitter", job.job_id));
            }
        }
        let waiting = self.fair.turn_order().count();
        if waiting != self.by_submitter.len() {
            return Err(format!(
                "{} submitters have ready jobs but {waiting} wait their turn",
                self.by_submitter.len()
            ));
        }
        Ok(())
    }
}
