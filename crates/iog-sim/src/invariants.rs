//! The rules a simulated run must never break, and how a broken one is reported.

use std::fmt;

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
pub const RULES: [(&str, &str); 8] = [
    ("commit-once", "a task is committed at most once"),
    ("result-stable", "a committed result never changes"),
    ("fencing", "a commit comes from the task's current lease, and each lease's token is larger than the last"),
    ("one-lease", "at most one worker holds a current lease on a task"),
    ("acked-durable", "every acknowledged submission survives any crash"),
    ("core", "the core's own bookkeeping is consistent"),
    ("liveness", "once faults stop, every job reaches a final state within the bound"),
    ("store-consistent", "the store describes a state the core can restore"),
];
