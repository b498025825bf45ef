use std::fmt;

use serde::{Deserialize, Serialize};

/// Fewest results that must agree under `replicate`.
pub const REPLICAS_MIN: u8 = 2;
/// Most results any task may be run for, whatever the policy asks.
pub const REPLICAS_LIMIT: u8 = 9;
/// Default for `replicas_max`: runs of one task before it fails for want of
/// a quorum.
pub const REPLICAS_MAX_DEFAULT: u8 = 5;

/// How a job's results are checked before they are accepted and paid.
///
/// A task may be run more than once; each run is a *replica*, a task of its
/// own. Replica `r` of task `i` of a job of `n` tasks has the index
/// `i + r·n` (see [`replica_index`]), so replica 0 is the task itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "policy", rename_all = "snake_case", deny_unknown_fields)]
pub enum Verify {
    /// Every committed result is accepted as it is.
    #[default]
    None,
    /// Run each task on `replicas` distinct workers and accept a result
    /// once `replicas` of them agree and no other result has as many; add
    /// replicas while none does, up to `replicas_max` in all.
    Replicate { replicas: u8, replicas_max: u8 },
    /// Run each task once; run it again on another worker unless the first
    /// worker has a streak of valid results, and then still at random
    /// (BOINC's adaptive replication). Two agreeing results settle a task
    /// that is checked; up to `replicas_max` runs in all.
    Adaptive { replicas_max: u8 },
    /// Run each task once and have the coordinator recompute a random
    /// sample of its result (pixels of a render tile, a sub-range of a hash
    /// search); a result whose sample differs is proven wrong and the task
    /// runs again on another worker, up to `replicas_max` runs in all.
    Spot { replicas_max: u8 },
}

impl Verify {
    /// Most runs of one task this policy allows.
    pub fn replicas_max(&self) -> u8 {
        match self {
            Verify::None => 1,
            Verify::Replicate { replicas_max, .. }
            | Verify::Adaptive { replicas_max }
            | Verify::Spot { replicas_max } => *replicas_max,
        }
    }

    /// Runs of each task started at once when the job is accepted.
    pub fn replicas_first(&self) -> u8 {
        match self {
            Verify::None | Verify::Adaptive { .. } | Verify::Spot { .. } => 1,
            Verify::Replicate { replicas, .. } => *replicas,
        }
    }

    /// Checks the numbers; the error names the field and its range.
    pub fn validate(&self) -> Result<(), String> {
        let max = self.replicas_max();
        if let Verify::Replicate { replicas, .. } = self
            && !(REPLICAS_MIN..=REPLICAS_LIMIT).contains(replicas)
        {
            return Err(format!("verify.replicas must be between {REPLICAS_MIN} and {REPLICAS_LIMIT}, got {replicas}"));
        }
        if !matches!(self, Verify::None) {
            let least = self.replicas_first().max(REPLICAS_MIN);
            if !(least..=REPLICAS_LIMIT).contains(&max) {
                return Err(format!("verify.replicas_max must be between {least} and {REPLICAS_LIMIT}, got {max}"));
            }
        }
        Ok(())
    }

    /// A short form for the store and for people: `none`,
    /// `replicate 2 of 5`, `adaptive of 5`, `spot of 5`.
    pub fn to_text(&self) -> String {
        self.to_string()
    }

    /// Reads [`Verify::to_text`] back.
    pub fn parse_text(text: &str) -> Option<Verify> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["none"] => Some(Verify::None),
            ["replicate", k, "of", max] => {
                Some(Verify::Replicate { replicas: k.parse().ok()?, replicas_max: max.parse().ok()? })
            }
            ["adaptive", "of", max] => Some(Verify::Adaptive { replicas_max: max.parse().ok()? }),
            ["spot", "of", max] => Some(Verify::Spot { replicas_max: max.parse().ok()? }),
            _ => None,
        }
    }
}

impl fmt::Display for Verify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verify::None => f.write_str("none"),
            Verify::Replicate { replicas, replicas_max } => write!(f, "replicate {replicas} of {replicas_max}"),
            Verify::Adaptive { replicas_max } => write!(f, "adaptive of {replicas_max}"),
            Verify::Spot { replicas_max } => write!(f, "spot of {replicas_max}"),
        }
    }
}

/// The index of replica `replica` of task `task_idx` in a job of `n_tasks`
/// tasks, or `None` when it does not fit a task index.
pub fn replica_index(n_tasks: u32, task_idx: u32, replica: u8) -> Option<u32> {
    u32::from(replica).checked_mul(n_tasks)?.checked_add(task_idx)
}

/// Which task a task index runs, and which replica of it it is.
pub fn replica_of(n_tasks: u32, index: u32) -> (u32, u8) {
    let n_tasks = n_tasks.max(1);
    (index % n_tasks, u8::try_from(index / n_tasks).unwrap_or(u8::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_ranges_are_checked() {
        for verify in [
            Verify::None,
            Verify::Replicate { replicas: 2, replicas_max: 5 },
            Verify::Adaptive { replicas_max: 4 },
            Verify::Spot { replicas_max: 3 },
        ] {
            assert_eq!(Verify::parse_text(&verify.to_text()), Some(verify));
            verify.validate().unwrap();
        }
        assert_eq!(Verify::parse_text("replicate two"), None);
        let err = Verify::Replicate { replicas: 1, replicas_max: 5 }.validate().unwrap_err();
        assert_eq!(err, "verify.replicas must be between 2 and 9, got 1");
        let err = Verify::Replicate { replicas: 3, replicas_max: 2 }.validate().unwrap_err();
        assert_eq!(err, "verify.replicas_max must be between 3 and 9, got 2");
        let err = Verify::Adaptive { replicas_max: 1 }.validate().unwrap_err();
        assert_eq!(err, "verify.replicas_max must be between 2 and 9, got 1");
    }

    #[test]
    fn replica_indices_follow_the_tasks() {
        assert_eq!(replica_index(10, 3, 0), Some(3));
        assert_eq!(replica_index(10, 3, 2), Some(23));
        assert_eq!(replica_of(10, 23), (3, 2));
        assert_eq!(replica_index(u32::MAX, 5, 1), None);
    }
}
