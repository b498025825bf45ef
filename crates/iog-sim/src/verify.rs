//! Result verification as the simulator sees it: which policy each job
//! draws, the rules every verdict of the core must keep, and what the
//! verdicts add up to.

use std::collections::BTreeMap;

use iog_core::verify::ADAPTIVE_STREAK_MIN;
use iog_types::{BlobId, TaskId, Verify, WorkerId};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::Violation;
use crate::cheat::CheatClass;

/// The reason key prefix of a slash for a result proven wrong (a slash for
/// failed hardware challenges has another).
pub(crate) const WRONG_RESULT_REASON: &str = "wrong result";

/// The verification policies jobs draw from. Gang jobs always verify
/// nothing: the core refuses gangs with verification.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyMix {
    /// Jobs that use [`VerifyMix::replicate`], in parts per thousand.
    pub replicate_per_mille: u32,
    /// Jobs that use [`VerifyMix::adaptive`], in parts per thousand.
    pub adaptive_per_mille: u32,
    /// Jobs that use [`VerifyMix::spot`], in parts per thousand; the rest
    /// verify nothing.
    pub spot_per_mille: u32,
    pub replicate: Verify,
    pub adaptive: Verify,
    pub spot: Verify,
}

impl Default for VerifyMix {
    /// A quarter of the jobs each: none, `replicate 2 of 5`, `adaptive of
    /// 5`, `spot of 5`.
    fn default() -> VerifyMix {
        VerifyMix {
            replicate_per_mille: 250,
            adaptive_per_mille: 250,
            spot_per_mille: 250,
            replicate: Verify::Replicate { replicas: 2, replicas_max: 5 },
            adaptive: Verify::Adaptive { replicas_max: 5 },
            spot: Verify::Spot { replicas_max: 5 },
        }
    }
}

impl VerifyMix {
    /// Every job verifies nothing, as before verification existed.
    pub fn none() -> VerifyMix {
        VerifyMix { replicate_per_mille: 0, adaptive_per_mille: 0, spot_per_mille: 0, ..VerifyMix::default() }
    }

    /// Every job uses `verify`.
    pub fn only(verify: Verify) -> VerifyMix {
        match verify {
            Verify::None => VerifyMix::none(),
            Verify::Replicate { .. } => VerifyMix { replicate_per_mille: 1000, replicate: verify, ..VerifyMix::none() },
            Verify::Adaptive { .. } => VerifyMix { adaptive_per_mille: 1000, adaptive: verify, ..VerifyMix::none() },
            Verify::Spot { .. } => VerifyMix { spot_per_mille: 1000, spot: verify, ..VerifyMix::none() },
        }
    }

    /// One job's policy. It always draws one number, so a job's draw does
    /// not depend on the mix of the jobs before it.
    pub(crate) fn draw(&self, rng: &mut ChaCha8Rng) -> Verify {
        let draw = rng.random_range(0..1000);
        if draw < self.replicate_per_mille {
            self.replicate
        } else if draw < self.replicate_per_mille + self.adaptive_per_mille {
            self.adaptive
        } else if draw < self.replicate_per_mille + self.adaptive_per_mille + self.spot_per_mille {
            self.spot
        } else {
            Verify::None
        }
    }
}

/// Runs of each task a job's budget is sized for: a submitter who asks for
/// replication pays for the runs it takes when workers agree.
pub(crate) fn budget_runs(verify: Verify) -> u64 {
    match verify {
        Verify::None | Verify::Spot { .. } => 1,
        Verify::Replicate { replicas, .. } => u64::from(replicas),
        Verify::Adaptive { .. } => 2,
    }
}

/// A verification policy without its numbers, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Policy {
    None,
    Replicate,
    Adaptive,
    Spot,
}

impl Policy {
    pub const ALL: [Policy; 4] = [Policy::None, Policy::Replicate, Policy::Adaptive, Policy::Spot];

    pub fn of(verify: Verify) -> Policy {
        match verify {
            Verify::None => Policy::None,
            Verify::Replicate { .. } => Policy::Replicate,
            Verify::Adaptive { .. } => Policy::Adaptive,
            Verify::Spot { .. } => Policy::Spot,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Policy::None => "none",
            Policy::Replicate => "replicate",
            Policy::Adaptive => "adaptive",
            Policy::Spot => "spot",
        }
    }
}

/// What became of the wrong results of one cheat class under one policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WrongCounts {
    /// Wrong results the coordinator committed (a result lost on the way
    /// or refused as stale is not counted).
    pub committed: u64,
    /// Judged wrong: unpaid, and their worker slashed.
    pub caught: u64,
    /// Accepted because other cheats returned the same wrong digest.
    pub accepted_agreeing: u64,
    /// Accepted alone: the job verifies nothing, or adaptive verification
    /// trusted the worker's streak and did not check it.
    pub accepted_alone: u64,
}

impl WrongCounts {
    pub fn accepted(&self) -> u64 {
        self.accepted_agreeing + self.accepted_alone
    }

    /// Committed but never judged: their job ended first.
    pub fn unjudged(&self) -> u64 {
        self.committed.saturating_sub(self.caught + self.accepted())
    }

    fn add(&mut self, other: &WrongCounts) {
        self.committed += other.committed;
        self.caught += other.caught;
        self.accepted_agreeing += other.accepted_agreeing;
        self.accepted_alone += other.accepted_alone;
    }
}

/// What one policy's jobs cost and settled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PolicyCounts {
    pub jobs: u64,
    pub tasks: u64,
    /// Tasks with an accepted result, and the runs (committed replicas)
    /// those tasks took: every run of a settled task is judged.
    pub settled: u64,
    pub settled_runs: u64,
    /// Tasks settled on one result nobody compared (every task of a job
    /// that verifies nothing; adaptive's spared trusted workers).
    pub unchecked: u64,
    /// Every committed run, of settled tasks or not.
    pub commits: u64,
    /// Jobs that failed because a task's runs never agreed.
    pub no_quorum: u64,
}

impl PolicyCounts {
    /// Extra runs per settled task: what verification cost in compute.
    pub fn overhead(&self) -> f64 {
        if self.settled == 0 { 0.0 } else { (self.settled_runs - self.settled) as f64 / self.settled as f64 }
    }

    fn add(&mut self, other: &PolicyCounts) {
        self.jobs += other.jobs;
        self.tasks += other.tasks;
        self.settled += other.settled;
        self.settled_runs += other.settled_runs;
        self.unchecked += other.unchecked;
        self.commits += other.commits;
        self.no_quorum += other.no_quorum;
    }
}

/// What verification did in a run, by policy and by cheat class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyStats {
    pub policies: BTreeMap<Policy, PolicyCounts>,
    pub wrong: BTreeMap<(Policy, CheatClass), WrongCounts>,
    /// Honest workers judged wrong (and slashed): only cheats that agree
    /// on a wrong digest and outnumber them can do that.
    pub honest_slashed: u64,
    /// Right results judged wrong, whoever returned them (an intermittent
    /// cheat's honest results too).
    pub right_judged_wrong: u64,
}

impl VerifyStats {
    pub fn add(&mut self, other: &VerifyStats) {
        for (policy, counts) in &other.policies {
            self.policies.entry(*policy).or_default().add(counts);
        }
        for (key, counts) in &other.wrong {
            self.wrong.entry(*key).or_default().add(counts);
        }
        self.honest_slashed += other.honest_slashed;
        self.right_judged_wrong += other.right_judged_wrong;
    }

    pub fn policy(&self, policy: Policy) -> PolicyCounts {
        self.policies.get(&policy).copied().unwrap_or_default()
    }

    pub fn wrong_of(&self, policy: Policy, class: CheatClass) -> WrongCounts {
        self.wrong.get(&(policy, class)).copied().unwrap_or_default()
    }

    /// One policy's wrong results, all classes together.
    pub fn wrong_under(&self, policy: Policy) -> WrongCounts {
        let mut total = WrongCounts::default();
        for class in CheatClass::ALL {
            total.add(&self.wrong_of(policy, class));
        }
        total
    }

    pub(crate) fn policy_mut(&mut self, policy: Policy) -> &mut PolicyCounts {
        self.policies.entry(policy).or_default()
    }

    pub(crate) fn wrong_mut(&mut self, policy: Policy, class: CheatClass) -> &mut WrongCounts {
        self.wrong.entry((policy, class)).or_default()
    }
}

/// One judged result: its worker, the worker's cheat class (`None` for an
/// honest worker) and the output it returned.
#[derive(Debug, Clone)]
pub(crate) struct Judged<'a> {
    pub(crate) worker_id: &'a WorkerId,
    pub(crate) class: Option<CheatClass>,
    pub(crate) output: BlobId,
}

/// A `TaskVerified` of the core, with what the simulator knows beside it.
#[derive(Debug, Clone)]
pub(crate) struct Verdict<'a> {
    pub(crate) task_id: TaskId,
    pub(crate) verify: Verify,
    /// The right output for the task's input.
    pub(crate) right: BlobId,
    /// The output the core accepted.
    pub(crate) output: BlobId,
    pub(crate) valid: Vec<Judged<'a>>,
    pub(crate) wrong: Vec<Judged<'a>>,
    /// The valid streak of the first valid result's worker as the store
    /// held it when the core judged.
    pub(crate) first_streak: u64,
}

impl Verdict<'_> {
    /// Checks the verdict against every rule and counts it.
    pub(crate) fn check(&self, stats: &mut VerifyStats) -> Result<(), Violation> {
        self.check_quorum()?;
        self.check_wrong_ones(stats)?;
        self.check_accepted(stats)?;
        let policy = stats.policy_mut(Policy::of(self.verify));
        policy.settled += 1;
        policy.settled_runs += (self.valid.len() + self.wrong.len()) as u64;
        let spot = matches!(self.verify, Verify::Spot { .. });
        policy.unchecked += u64::from(!spot && self.valid.len() == 1 && self.wrong.is_empty());
        Ok(())
    }

    /// Wrong results outvoted only by cheats that agree on their lie.
    fn outvoted_by_agreeing_cheats(&self) -> bool {
        self.output != self.right && self.valid.len() >= 2 && self.valid.iter().all(|r| r.class.is_some())
    }

    /// `quorum`: the accepted output has the policy's quorum and more
    /// results returned it than any other output, or is adaptive's single result of a worker
    /// with a streak long enough to be spared.
    fn check_quorum(&self) -> Result<(), Violation> {
        let (n_valid, n_wrong) = (self.valid.len(), self.wrong.len());
        // More results agree on the accepted output than on any other one.
        let runner_up = self.wrong.iter().map(|r| self.wrong.iter().filter(|o| o.output == r.output).count()).max();
        let outnumbers = n_valid > runner_up.unwrap_or(0);
        let ok = match self.verify {
            Verify::None => n_valid == 1 && n_wrong == 0,
            Verify::Replicate { replicas, .. } => n_valid >= usize::from(replicas) && outnumbers,
            Verify::Adaptive { .. } => {
                let spared = n_valid == 1 && n_wrong == 0 && self.first_streak >= u64::from(ADAPTIVE_STREAK_MIN);
                (n_valid >= 2 && outnumbers) || spared
            }
            // The one run whose spot check passed; runs that failed theirs
            // were rejected on their own.
            Verify::Spot { .. } => n_valid == 1 && n_wrong == 0,
        };
        if !ok {
            return Err(Violation::new(
                "quorum",
                format!(
                    "{} ({}) accepted {} on {n_valid} agreeing results {:?} against {n_wrong} {:?} (first worker's \
                     streak {})",
                    self.task_id,
                    self.verify,
                    self.output,
                    self.valid.iter().map(|r| r.worker_id).collect::<Vec<_>>(),
                    self.wrong.iter().map(|r| (r.worker_id, r.output)).collect::<Vec<_>>(),
                    self.first_streak
                ),
            ));
        }
        let mut workers: Vec<&WorkerId> = self.valid.iter().chain(&self.wrong).map(|r| r.worker_id).collect();
        workers.sort_unstable();
        workers.dedup();
        if workers.len() != n_valid + n_wrong {
            return Err(Violation::new("replicas", format!("{}: two replicas judged of one worker", self.task_id)));
        }
        Ok(())
    }

    /// `honest-never-slashed`: a result is judged wrong only when it is, or
    /// when cheats that agree on a wrong digest outvote it (the limit of
    /// any quorum, counted rather than broken).
    fn check_wrong_ones(&self, stats: &mut VerifyStats) -> Result<(), Violation> {
        let policy = Policy::of(self.verify);
        for result in &self.wrong {
            if result.output == self.right {
                if !self.outvoted_by_agreeing_cheats() {
                    return Err(Violation::new(
                        "honest-never-slashed",
                        format!(
                            "{}: the right result of {} ({:?}) judged wrong, {} accepted",
                            self.task_id, result.worker_id, result.class, self.output
                        ),
                    ));
                }
                stats.right_judged_wrong += 1;
                stats.honest_slashed += u64::from(result.class.is_none());
            } else if let Some(class) = result.class {
                stats.wrong_mut(policy, class).caught += 1;
            }
        }
        Ok(())
    }

    /// `wrong-accepted-only-by-agreeing-cheats`: a wrong output is accepted
    /// only from cheats, and under a policy that verifies only when two or
    /// more of them agree on it, or when adaptive verification spared the
    /// one result (counted as undetected, not broken).
    fn check_accepted(&self, stats: &mut VerifyStats) -> Result<(), Violation> {
        if self.output == self.right {
            return Ok(());
        }
        let from_cheats = self.valid.iter().all(|r| r.class.is_some());
        let alone = self.valid.len() == 1 && self.wrong.is_empty();
        // A replicate quorum is at least two, so a single result is never
        // excused there (the quorum rule catches it first).
        let single_allowed = !matches!(self.verify, Verify::Replicate { .. });
        let excused = from_cheats && (self.valid.len() >= 2 || (alone && single_allowed));
        if !excused {
            return Err(Violation::new(
                "wrong-accepted-only-by-agreeing-cheats",
                format!(
                    "{} ({}) accepted the wrong output {} from {:?}",
                    self.task_id,
                    self.verify,
                    self.output,
                    self.valid.iter().map(|r| (r.worker_id, r.class)).collect::<Vec<_>>()
                ),
            ));
        }
        let policy = Policy::of(self.verify);
        for class in self.valid.iter().filter_map(|r| r.class) {
            let counts = stats.wrong_mut(policy, class);
            if alone {
                counts.accepted_alone += 1;
            } else {
                counts.accepted_agreeing += 1;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use iog_types::JobId;

    use super::*;

    const REPLICATE: Verify = Verify::Replicate { replicas: 2, replicas_max: 5 };
    const ADAPTIVE: Verify = Verify::Adaptive { replicas_max: 5 };

    fn digest(n: u8) -> BlobId {
        BlobId::of(&[n])
    }

    /// A verdict on task 0 whose right output is `digest(0)`; `valid` and
    /// `wrong` list (worker, class, output).
    fn verdict<'a>(
        verify: Verify,
        output: u8,
        valid: &[(&'a WorkerId, Option<CheatClass>)],
        wrong: &[(&'a WorkerId, Option<CheatClass>, u8)],
        first_streak: u64,
    ) -> Verdict<'a> {
        Verdict {
            task_id: TaskId::new(JobId(1), 0),
            verify,
            right: digest(0),
            output: digest(output),
            valid: valid
                .iter()
                .map(|(worker_id, class)| Judged { worker_id, class: *class, output: digest(output) })
                .collect(),
            wrong: wrong
                .iter()
                .map(|(worker_id, class, out)| Judged { worker_id, class: *class, output: digest(*out) })
                .collect(),
            first_streak,
        }
    }

    #[test]
    fn a_caught_lie_is_counted_and_an_honest_result_is_never_judged_wrong_alone() {
        let (a, b, c) = (WorkerId("a".into()), WorkerId("b".into()), WorkerId("c".into()));
        let cheat = Some(CheatClass::RandomBytes);
        let mut stats = VerifyStats::default();
        verdict(REPLICATE, 0, &[(&a, None), (&b, None)], &[(&c, cheat, 9)], 0).check(&mut stats).unwrap();
        assert_eq!(stats.wrong_of(Policy::Replicate, CheatClass::RandomBytes).caught, 1);
        assert_eq!(stats.policy(Policy::Replicate).overhead(), 2.0);
        // An honest result judged wrong while the right one was accepted:
        // the core marked the wrong replica.
        let broken = verdict(REPLICATE, 0, &[(&a, None), (&b, None)], &[(&c, None, 0)], 0);
        assert_eq!(broken.check(&mut stats).unwrap_err().rule, "honest-never-slashed");
    }

    #[test]
    fn only_agreeing_cheats_or_a_spared_streak_get_a_lie_accepted() {
        let (a, b, c) = (WorkerId("a".into()), WorkerId("b".into()), WorkerId("c".into()));
        let colluder = Some(CheatClass::Colluder);
        let mut stats = VerifyStats::default();
        // Two colluders outvote an honest worker: the limit of a quorum, counted.
        verdict(REPLICATE, 7, &[(&a, colluder), (&b, colluder)], &[(&c, None, 0)], 0).check(&mut stats).unwrap();
        assert_eq!(stats.wrong_of(Policy::Replicate, CheatClass::Colluder).accepted_agreeing, 2);
        assert_eq!((stats.honest_slashed, stats.right_judged_wrong), (1, 1));
        // Adaptive spares a worker with a streak: its lie goes through alone.
        let intermittent = Some(CheatClass::Intermittent);
        verdict(ADAPTIVE, 7, &[(&a, intermittent)], &[], 12).check(&mut stats).unwrap();
        assert_eq!(stats.wrong_of(Policy::Adaptive, CheatClass::Intermittent).accepted_alone, 1);
        // But not a worker without one, and replicate never takes one result.
        let unearned = verdict(ADAPTIVE, 7, &[(&a, intermittent)], &[], 3);
        assert_eq!(unearned.check(&mut stats).unwrap_err().rule, "quorum");
        let single = verdict(REPLICATE, 0, &[(&a, None)], &[], 50);
        assert_eq!(single.check(&mut stats).unwrap_err().rule, "quorum");
        // A tie is no quorum.
        let d = WorkerId("d".into());
        let tie = verdict(REPLICATE, 0, &[(&a, None), (&b, None)], &[(&c, colluder, 7), (&d, colluder, 7)], 0);
        assert_eq!(tie.check(&mut stats).unwrap_err().rule, "quorum");
        // A lie accepted over an honest result with an honest worker among
        // its supporters cannot be: honest workers return the right output.
        let mixed = verdict(REPLICATE, 7, &[(&a, colluder), (&b, None)], &[(&c, None, 0)], 0);
        assert_eq!(mixed.check(&mut stats).unwrap_err().rule, "honest-never-slashed");
    }

    #[test]
    fn the_mix_draws_each_policy_at_its_share_and_one_policy_alone() {
        use rand::SeedableRng;
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        let mix = VerifyMix::default();
        let drawn: Vec<Policy> = (0..4_000).map(|_| Policy::of(mix.draw(&mut rng))).collect();
        for policy in Policy::ALL {
            let n = drawn.iter().filter(|p| **p == policy).count();
            assert!((900..1100).contains(&n), "{policy:?}: {n}");
        }
        assert!((0..100).all(|_| VerifyMix::only(ADAPTIVE).draw(&mut rng) == ADAPTIVE));
        assert!((0..100).all(|_| VerifyMix::none().draw(&mut rng) == Verify::None));
    }
}
