use std::collections::BTreeSet;

use iog_types::{TaskId, UnixMs, WorkerId};

/// Tasks waiting for a worker: ready ones in submission order, and ones
/// whose retry backoff has not ended yet, by the time it ends.
#[derive(Debug, Default)]
pub(crate) struct TaskQueue {
    /// (job sequence number, task) — older jobs first, then task order.
    ready: BTreeSet<(u64, TaskId)>,
    /// (not before, job sequence number, task).
    delayed: BTreeSet<(UnixMs, u64, TaskId)>,
}

impl TaskQueue {
    pub(crate) fn push(&mut self, job_seq: u64, task_id: TaskId, not_before_ms: UnixMs, now: UnixMs) {
        if not_before_ms <= now {
            self.ready.insert((job_seq, task_id));
        } else {
            self.delayed.insert((not_before_ms, job_seq, task_id));
        }
    }

    /// Moves every task whose backoff ended by `now` to the ready set.
    pub(crate) fn release_due(&mut self, now: UnixMs) {
        while let Some(&(not_before, seq, task_id)) = self.delayed.first() {
            if not_before > now {
                break;
            }
            self.delayed.pop_first();
            self.ready.insert((seq, task_id));
        }
    }

    pub(crate) fn pop_ready(&mut self) -> Option<TaskId> {
        self.ready.pop_first().map(|(_, task_id)| task_id)
    }

    pub(crate) fn has_ready(&self) -> bool {
        !self.ready.is_empty()
    }

    /// Removes a task wherever it waits (used when its job ends).
    pub(crate) fn remove(&mut self, job_seq: u64, task_id: TaskId, not_before_ms: UnixMs) {
        self.ready.remove(&(job_seq, task_id));
        self.delayed.remove(&(not_before_ms, job_seq, task_id));
    }

    pub(crate) fn len(&self) -> usize {
        self.ready.len() + self.delayed.len()
    }
}

/// Connected workers with a free slot, least recently given work first, so
/// work spreads over the fleet.
#[derive(Debug, Default)]
pub(crate) struct FreeWorkers {
    set: BTreeSet<(u64, WorkerId)>,
}

impl FreeWorkers {
    pub(crate) fn insert(&mut self, last_assigned: u64, worker_id: WorkerId) {
        self.set.insert((last_assigned, worker_id));
    }

    pub(crate) fn remove(&mut self, last_assigned: u64, worker_id: &WorkerId) {
        self.set.remove(&(last_assigned, worker_id.clone()));
    }

    pub(crate) fn pop(&mut self) -> Option<WorkerId> {
        self.set.pop_first().map(|(_, worker_id)| worker_id)
    }
}
