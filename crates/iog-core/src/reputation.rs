//! A worker's reputation: what it has done, counted, and the score placement
//! ranks by (beside price and distance; see `iog_sched::index::RankWeights`).
//!
//! The score is a smoothed share of good outcomes: each kind of outcome
//! weighs what it says about the worker, and a prior of
//! [`PRIOR_WEIGHT`] good and as many bad stands in for what is not known,
//! so a new worker starts at the neutral 500 and a few outcomes move it
//! only a little. Failing a hardware challenge weighs most: it is evidence
//! of a false claim, where a failed task may be the job's fault.
//!
//! Uptime counts as whole hours online. Not counted yet: verified results
//! (no result verification exists yet; a committed result counts as done,
//! not as valid).

/// Weight of one committed task.
pub const WEIGHT_COMMITTED: u64 = 1;
/// Weight of one task the worker reported failed.
pub const WEIGHT_FAILED: u64 = 1;
/// Weight of one lease that lapsed in the worker's hands (it died, or
/// dropped a task without a word): worse than saying it failed.
pub const WEIGHT_LAPSED: u64 = 3;
/// Weight of one passed hardware challenge round.
pub const WEIGHT_CHALLENGE_PASSED: u64 = 5;
/// Weight of one whole hour online (connected and heartbeating).
pub const WEIGHT_ONLINE_HOUR: u64 = 1;
/// Weight of one failed hardware challenge round.
pub const WEIGHT_CHALLENGE_FAILED: u64 = 25;
/// The prior: this much weight of good and as much of bad.
pub const PRIOR_WEIGHT: u64 = 10;

/// A worker's record of outcomes since the coordinator started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reputation {
    pub tasks_committed: u64,
    pub tasks_failed: u64,
    pub leases_lapsed: u64,
    pub challenges_passed: u64,
    pub challenges_failed: u64,
    /// Whole hours it was online in one stretch (a partial hour at the end
    /// of a session is not counted).
    pub online_hours: u64,
}

impl Reputation {
    /// The score from 0 (only bad outcomes, many of them) to 1000; 500
    /// for a worker with no record.
    pub fn score_milli(&self) -> u16 {
        let good = self.tasks_committed * WEIGHT_COMMITTED
            + self.challenges_passed * WEIGHT_CHALLENGE_PASSED
            + self.online_hours * WEIGHT_ONLINE_HOUR;
        let bad = self.tasks_failed * WEIGHT_FAILED
            + self.leases_lapsed * WEIGHT_LAPSED
            + self.challenges_failed * WEIGHT_CHALLENGE_FAILED;
        let good = u128::from(good) + u128::from(PRIOR_WEIGHT);
        let all = good + u128::from(bad) + u128::from(PRIOR_WEIGHT);
        u16::try_from(good * 1000 / all).expect("a share of 1000 fits")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_worker_is_neutral_and_outcomes_move_it_by_their_weight() {
        assert_eq!(Reputation::default().score_milli(), 500);
        assert_eq!(Reputation::default().score_milli(), iog_sched::index::REPUTATION_NEUTRAL_MILLI);
        let reliable = Reputation { tasks_committed: 100, challenges_passed: 2, ..Reputation::default() };
        assert_eq!(reliable.score_milli(), 923);
        let flaky = Reputation { tasks_committed: 100, leases_lapsed: 30, ..Reputation::default() };
        assert_eq!(flaky.score_milli(), 523);
        let liar = Reputation { tasks_committed: 100, challenges_failed: 3, ..Reputation::default() };
        assert!(liar.score_milli() < reliable.score_milli());
        assert_eq!(Reputation { challenges_failed: 1, ..Reputation::default() }.score_milli(), 222);
        let steady = Reputation { online_hours: 30, ..Reputation::default() };
        assert_eq!(steady.score_milli(), 800);
        let huge = Reputation { tasks_committed: u64::MAX / 4, online_hours: u64::MAX / 4, ..Reputation::default() };
        assert_eq!(huge.score_milli(), 999);
    }
}
