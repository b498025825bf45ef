//! The rules a simulated run must never break, and how a broken one is reported.

use std::collections::BTreeSet;
use std::fmt;

use iog_types::{TaskId, WorkerId};

/// A broken rule: which, where, and what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Short stable name of the rule, e.g. `commit-once`.
    pub rule: &'static str,
    pub detail: String,
    /// Step of the run at which it was seen (filled in by the simulator).
    pub step: u64,
    /// Virtual time in ms at which it was seen.
    pub at_ms: u64,
}

impl Violation {
    pub fn new(rule: &'static str, detail: impl Into<String>) -> Violation {
        Violation { rule, detail: detail.into(), step: 0, at_ms: 0 }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rule {} broken at step {} (t={} ms): {}", self.rule, self.step, self.at_ms, self.detail)
    }
}

impl std::error::Error for Violation {}

/// Every rule the simulator checks, with the sentence it stands for.
pub const RULES: [(&str, &str); 14] = [
    ("commit-once", "a task is committed at most once"),
    ("result-stable", "a committed result never changes"),
    ("fencing", "a commit comes from the task's current lease, and each lease's token is larger than the last"),
    ("one-lease", "at most one worker holds a current lease on a task"),
    ("acked-durable", "every acknowledged submission survives any crash"),
    ("core", "the core's own bookkeeping is consistent"),
    ("liveness", "once faults stop, every job reaches a final state within the bound"),
    ("store-consistent", "the store describes a state the core can restore"),
    ("attempts", "each lease counts exactly one attempt of its task"),
    ("yield", "only a leased task is yielded, only to its owner's return, and the yielded attempt is not counted"),
    ("owner-paused", "no task is leased to a worker whose owner uses the machine, as the coordinator last heard"),
    ("price", "a lease pays its worker's asking price, within the job's cap, and its commit pays the same"),
    ("money", "the ledger follows its journal, its own rules hold, and every escrow of a final job is closed"),
    ("paid-once", "every committed task of a paid job is paid once, to its worker, at most at its price"),
];

/// Which workers' owners are using their machines as the coordinator last
/// heard it (a `Pause` read in the worker's current session and no `Resume`
/// since), and the rule that none of them holds a lease.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnerPauses {
    paused: BTreeSet<WorkerId>,
}

impl OwnerPauses {
    /// The coordinator read a `Pause` (or a `Resume`) from the worker.
    pub(crate) fn heard(&mut self, worker_id: &WorkerId, paused: bool) {
        if paused {
            self.paused.insert(worker_id.clone());
        } else {
            self.paused.remove(worker_id);
        }
    }

    /// A new session, or a worker declared dead: the coordinator starts it unpaused.
    pub(crate) fn forget(&mut self, worker_id: &WorkerId) {
        self.paused.remove(worker_id);
    }

    /// The coordinator restarted and knows no worker.
    pub(crate) fn clear(&mut self) {
        self.paused.clear();
    }

    pub(crate) fn is_paused(&self, worker_id: &WorkerId) -> bool {
        self.paused.contains(worker_id)
    }

    /// A lease of `task_id` was just granted to `worker_id`.
    pub(crate) fn check_lease(&self, worker_id: &WorkerId, task_id: TaskId) -> Result<(), Violation> {
        if self.is_paused(worker_id) {
            return Err(Violation::new(
                "owner-paused",
                format!("{task_id} leased to {worker_id} while its owner uses it"),
            ));
        }
        Ok(())
    }

    /// After a `Pause` from `worker_id` was handled: the worker holds no lease.
    pub(crate) fn check_paused_holds_nothing(worker_id: &WorkerId, held: &[TaskId]) -> Result<(), Violation> {
        match held.first() {
            None => Ok(()),
            Some(task_id) => Err(Violation::new(
                "owner-paused",
                format!("{worker_id} still holds {} leases (first {task_id}) after its owner took it back", held.len()),
            )),
        }
    }
}
