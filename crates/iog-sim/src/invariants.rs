//! The rules a simulated run must never break, and how a broken one is reported.

use std::collections::BTreeSet;
use std::fmt;

use iog_types::{JobId, TaskId, TaskState, WorkerId};

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
pub const RULES: [(&str, &str); 23] = [
    ("commit-once", "a task is committed at most once"),
    ("result-stable", "a committed result never changes"),
    ("fencing", "a commit comes from the task's current lease, and each lease's token is larger than the last"),
    ("one-lease", "at most one worker holds a current lease on a task"),
    ("acked-durable", "every acknowledged submission survives any crash"),
    ("core", "the core's own bookkeeping is consistent"),
    ("liveness", "once faults stop, every job reaches a final state within the bound"),
    ("store-consistent", "the store describes a state the core can restore"),
    ("attempts", "each lease counts exactly one attempt of its task"),
    (
        "yield",
        "only a leased task is yielded, only to its owner's return or to another member of its gang stopping, \
         and the yielded attempt is not counted",
    ),
    ("owner-paused", "no task is leased to a worker whose owner uses the machine, as the coordinator last heard"),
    ("price", "a lease pays its worker's asking price, within the job's cap, and its commit pays the same"),
    ("money", "the ledger follows its journal, its own rules hold, and every escrow of a final job is closed"),
    ("paid-once", "every committed task of a paid job is paid once, to its worker, at most at its price"),
    (
        "gang",
        "in the store, a running gang job has none or all of its unfinished tasks leased, each on a distinct worker",
    ),
    ("challenge-idle", "no task is leased to a worker while its hardware challenge round runs"),
    ("replicas", "a replica runs its task's input, within its job's replica limit, on a worker of its own"),
    ("verify-once", "a task is settled at most once"),
    (
        "chain-in-order",
        "a chained job's next task is made only once the one before is settled, from that task's stored input and \
         accepted output",
    ),
    (
        "verify",
        "a verdict judges committed replicas, each once, valid exactly when its output agrees with the accepted one \
         (the same bytes, or the same result computed in other precision)",
    ),
    (
        "quorum",
        "an accepted result has its policy's quorum and more results returned it than any other output, or is \
         adaptive's single result of a worker with a streak long enough to be spared",
    ),
    (
        "honest-never-slashed",
        "a result is judged wrong (and its worker slashed) only when it is wrong, or when cheats that agree on a \
         wrong output outvote it; each such slash matches a result judged wrong",
    ),
    (
        "wrong-accepted-only-by-agreeing-cheats",
        "a wrong output is accepted only from cheats: agreeing ones, or one alone where its job verifies nothing \
         or adaptive verification spared it",
    ),
];

/// The `gang` rule for one running gang job, given each of its tasks'
/// stored state and holder.
pub(crate) fn check_gang(job_id: JobId, tasks: Vec<(TaskId, TaskState, Option<&WorkerId>)>) -> Result<(), Violation> {
    let mut holders: BTreeSet<&WorkerId> = BTreeSet::new();
    let (mut leased, mut queued) = (Vec::new(), Vec::new());
    for (task_id, state, holder) in tasks {
        match state {
            TaskState::Leased => {
                let holder = holder.ok_or_else(|| Violation::new("gang", format!("{task_id} leased to no one")))?;
                if !holders.insert(holder) {
                    return Err(Violation::new("gang", format!("{job_id} has two members leased to {holder}")));
                }
                leased.push(task_id);
            }
            TaskState::Queued => queued.push(task_id),
            TaskState::Committed | TaskState::Failed | TaskState::Cancelled => {}
        }
    }
    if !leased.is_empty() && !queued.is_empty() {
        return Err(Violation::new(
            "gang",
            format!(
                "{job_id} runs part of its gang: {} leased (first {}), {} unfinished not (first {})",
                leased.len(),
                leased[0],
                queued.len(),
                queued[0]
            ),
        ));
    }
    Ok(())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    fn member(idx: u32, state: TaskState, holder: Option<&WorkerId>) -> (TaskId, TaskState, Option<&WorkerId>) {
        (TaskId::new(JobId(1), idx), state, holder)
    }

    #[test]
    fn a_gang_is_leased_whole_or_not_at_all_and_on_distinct_workers() {
        let (a, b) = (WorkerId("a".into()), WorkerId("b".into()));
        let whole = vec![
            member(0, TaskState::Committed, None),
            member(1, TaskState::Leased, Some(&a)),
            member(2, TaskState::Leased, Some(&b)),
        ];
        assert!(check_gang(JobId(1), whole).is_ok());
        let waiting = vec![member(0, TaskState::Queued, None), member(1, TaskState::Queued, None)];
        assert!(check_gang(JobId(1), waiting).is_ok());
        let part = vec![member(0, TaskState::Leased, Some(&a)), member(1, TaskState::Queued, None)];
        assert_eq!(check_gang(JobId(1), part).unwrap_err().rule, "gang");
        let shared = vec![member(0, TaskState::Leased, Some(&a)), member(1, TaskState::Leased, Some(&a))];
        assert_eq!(check_gang(JobId(1), shared).unwrap_err().rule, "gang");
    }
}
