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
//! Uptime counts as whole hours online. A result that verification
//! compared with another worker's and found valid counts as more than a
//! committed one; a result proven wrong resets the record (see
//! [`Reputation::reset_for_wrong_result`]) and then weighs most of all.

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
/// Weight of one result another worker's result confirmed.
pub const WEIGHT_VALID: u64 = 2;
/// Weight of one result proven wrong by a quorum of other workers.
pub const WEIGHT_WRONG: u64 = 50;
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
    /// Results confirmed by another worker's, and proven wrong.
    pub results_valid: u64,
    pub results_wrong: u64,
    /// Confirmed results since the last wrong one (adaptive verification
    /// checks a worker's results less often as this grows).
    pub valid_streak: u64,
}

impl Reputation {
    /// The score from 0 (only bad outcomes, many of them) to 1000; 500
    /// for a worker with no record.
    pub fn score_milli(&self) -> u16 {
        let weigh = |n: u64, weight: u64| u128::from(n) * u128::from(weight);
        let good = weigh(self.tasks_committed, WEIGHT_COMMITTED)
            + weigh(self.challenges_passed, WEIGHT_CHALLENGE_PASSED)
            + weigh(self.online_hours, WEIGHT_ONLINE_HOUR)
            + weigh(self.results_valid, WEIGHT_VALID);
        let bad = weigh(self.tasks_failed, WEIGHT_FAILED)
            + weigh(self.leases_lapsed, WEIGHT_LAPSED)
            + weigh(self.challenges_failed, WEIGHT_CHALLENGE_FAILED)
            + weigh(self.results_wrong, WEIGHT_WRONG);
        let good = good + u128::from(PRIOR_WEIGHT);
        let all = good + bad + u128::from(PRIOR_WEIGHT);
        u16::try_from(good * 1000 / all).expect("a share of 1000 fits")
    }

    /// A result of the worker's was proven wrong: what it earned by its
    /// tasks, hours and confirmed results is gone, its streak starts over,
    /// and the wrong result is counted. Failures stay counted.
    pub fn reset_for_wrong_result(&mut self) {
        *self = Reputation {
            tasks_failed: self.tasks_failed,
            leases_lapsed: self.leases_lapsed,
            challenges_passed: self.challenges_passed,
            challenges_failed: self.challenges_failed,
            results_wrong: self.results_wrong.saturating_add(1),
            ..Reputation::default()
        };
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
        let mut cheat = Reputation { tasks_committed: 500, results_valid: 50, valid_streak: 50, ..reliable };
        assert!(cheat.score_milli() > 950);
        cheat.reset_for_wrong_result();
        assert_eq!(cheat.valid_streak, 0);
        assert_eq!(cheat.results_wrong, 1);
        assert_eq!(cheat.score_milli(), 250);
    }
}
