//! Result verification: when a task's replicas settle it, and when the
//! adaptive policy checks a worker's result again.
//!
//! A task of a job that verifies its results is run as one or more
//! *replicas*, tasks of their own (see [`iog_types::Verify`]). Once every
//! replica created so far has committed, [`judge`] compares their output
//! digests: a digest that at least `needed` replicas agree on and that
//! more replicas returned than any other digest is accepted; the replicas
//! that agree are valid (and paid), the others are proven wrong. Otherwise
//! more replicas are run, up to the policy's limit, and the task fails
//! without a quorum after that.
//!
//! Wrong answers of independent cheats differ from each other, so the right
//! answer wins as soon as `needed` honest workers returned it, however many
//! cheats ran the task; only cheats that agree on one wrong answer
//! (colluders) can win, and only a quorum they fill themselves.

use std::collections::{BTreeSet, HashMap};

use iog_types::{BlobId, TaskId, UnixMs};

/// A worker with fewer valid results in a row than this always has its
/// results checked under the adaptive policy.
pub const ADAPTIVE_STREAK_MIN: u32 = 10;

/// However long its streak, a worker's result is still checked with at
/// least probability 1 / this under the adaptive policy, so a worker that
/// built a streak cannot cheat freely.
pub const ADAPTIVE_CHECK_ONE_IN_MAX: u32 = 20;

/// What the replicas of one task say so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Some replica has not committed yet.
    Wait,
    /// No digest has a quorum yet: run this many more replicas.
    More(u8),
    /// `output` is the task's result; `valid` lists the replicas (by
    /// replica number) that returned it, `wrong` those that did not.
    Accept { output: BlobId, valid: Vec<u8>, wrong: Vec<u8> },
    /// The replica limit is reached without a quorum.
    NoQuorum { n_results: u8, n_digests: u8 },
}

/// Judges a task's replicas: `outputs[r]` is replica `r`'s committed
/// output, `None` while it has not committed. `needed` agreeing results
/// settle the task; `replicas_max` bounds how many may be run.
pub(crate) fn judge(outputs: &[Option<BlobId>], needed: u8, replicas_max: u8) -> Verdict {
    if outputs.iter().any(Option::is_none) {
        return Verdict::Wait;
    }
    let committed: Vec<BlobId> = outputs.iter().flatten().copied().collect();
    // Few replicas: counting by pairs is cheaper than any map.
    let count = |digest: &BlobId| committed.iter().filter(|other| *other == digest).count();
    let best = committed.iter().max_by_key(|digest| count(digest)).copied();
    let n_created = u8::try_from(outputs.len()).unwrap_or(u8::MAX);
    let Some(best) = best else {
        return Verdict::More(needed.max(1).min(replicas_max));
    };
    let agree = count(&best);
    let runner_up = committed.iter().filter(|digest| **digest != best).map(count).max().unwrap_or(0);
    if agree >= usize::from(needed) && agree > runner_up {
        let (valid, wrong): (Vec<u8>, Vec<u8>) =
            (0..n_created).partition(|replica| committed[usize::from(*replica)] == best);
        return Verdict::Accept { output: best, valid, wrong };
    }
    if n_created >= replicas_max {
        let mut digests = committed.clone();
        digests.sort_unstable();
        digests.dedup();
        return Verdict::NoQuorum { n_results: n_created, n_digests: u8::try_from(digests.len()).unwrap_or(u8::MAX) };
    }
    // Enough to reach `needed` if the new ones agree with the best so far,
    // and at least one.
    let short = usize::from(needed).saturating_sub(agree).max(1);
    let more = u8::try_from(short).unwrap_or(u8::MAX).min(replicas_max - n_created);
    Verdict::More(more)
}

/// Replicas' outputs seen through the shell's comparison: `classes[r]` is
/// the first replica whose output replica `r`'s agrees with (itself when
/// none before it does). Each output is replaced by its class's first
/// output, so [`judge`] counts results that agree within the workload's
/// tolerance as one. Classes that do not fit the outputs (a shell fault)
/// are ignored: then only identical digests agree.
pub(crate) fn by_class(outputs: &[BlobId], classes: &[u8]) -> Vec<Option<BlobId>> {
    let first_of = |r: usize| outputs.iter().position(|output| *output == outputs[r]).unwrap_or(r);
    // A class names an earlier (or the same) replica that heads its own
    // class, and identical outputs share one.
    let fits = classes.len() == outputs.len()
        && classes.iter().enumerate().all(|(r, &class)| {
            let head = usize::from(class);
            head <= r && classes[head] == class && classes[first_of(r)] == class
        });
    (0..outputs.len()).map(|r| Some(outputs[if fits { usize::from(classes[r]) } else { first_of(r) }])).collect()
}

/// Checks the core asked the shell for and is waiting on: how many times
/// each was asked, and when to ask again. Only an ask's latest deadline
/// counts: one asked again (a new round of replicas compared, say) is not
/// asked early by the deadline of the round before.
#[derive(Debug, Default)]
pub(crate) struct Asks {
    /// Asks so far, and the deadline of the latest.
    pending: HashMap<TaskId, (u32, UnixMs)>,
    deadlines: BTreeSet<(UnixMs, TaskId)>,
}

impl Asks {
    /// Records one more ask for `id`, to be asked again at `due_ms`.
    pub(crate) fn ask(&mut self, id: TaskId, due_ms: UnixMs) {
        let entry = self.pending.entry(id).or_insert((0, due_ms));
        *entry = (entry.0 + 1, due_ms);
        self.deadlines.insert((due_ms, id));
    }

    /// An answer came for `id`: whether it was still awaited.
    pub(crate) fn answered(&mut self, id: TaskId) -> bool {
        self.pending.remove(&id).is_some()
    }

    /// Whether an answer for `id` is awaited.
    pub(crate) fn awaits(&self, id: TaskId) -> bool {
        self.pending.contains_key(&id)
    }

    /// The asks whose latest deadline passed by `now` and that still wait
    /// for their answer, each with how many times it was asked.
    pub(crate) fn overdue(&mut self, now: UnixMs) -> Vec<(TaskId, u32)> {
        let mut due = Vec::new();
        while let Some(&(due_ms, id)) = self.deadlines.first() {
            if due_ms > now {
                break;
            }
            self.deadlines.pop_first();
            if let Some(&(asks, latest_ms)) = self.pending.get(&id)
                && latest_ms == due_ms
            {
                due.push((id, asks));
            }
        }
        due
    }
}

/// Whether the adaptive policy checks this result of a worker with
/// `streak` valid results in a row: always below
/// [`ADAPTIVE_STREAK_MIN`], and then with probability 1 / `streak`
/// (at least 1 / [`ADAPTIVE_CHECK_ONE_IN_MAX`]). The draw is a keyed hash
/// of the task under the coordinator's secret `key`, so a worker cannot
/// tell in advance which of its results will be checked, and a replay of
/// the same events draws the same.
pub(crate) fn adaptive_checks(key: u64, task_id: TaskId, streak: u32) -> bool {
    if streak < ADAPTIVE_STREAK_MIN {
        return true;
    }
    let one_in = streak.min(ADAPTIVE_CHECK_ONE_IN_MAX);
    let draw = keyed_draw(key, b"iog adaptive check", task_id);
    draw.is_multiple_of(u64::from(one_in))
}

/// The seed of a run's spot check: a keyed hash of the run under the
/// coordinator's secret `key`, so a worker cannot tell which samples will
/// be recomputed.
pub(crate) fn spot_seed(key: u64, task_id: TaskId) -> u64 {
    keyed_draw(key, b"iog spot check", task_id)
}

/// A number drawn for a task from a blake3 hash keyed by the coordinator's
/// secret `key`, under a `label` that keeps the draws of different uses
/// apart.
fn keyed_draw(key: u64, label: &[u8], task_id: TaskId) -> u64 {
    let mut hasher_key = [0u8; 32];
    hasher_key[..8].copy_from_slice(&key.to_le_bytes());
    let mut hasher = blake3::Hasher::new_keyed(&hasher_key);
    hasher.update(label);
    hasher.update(&task_id.job_id.0.to_le_bytes());
    hasher.update(&task_id.task_idx.to_le_bytes());
    u64::from_le_bytes(hasher.finalize().as_bytes()[..8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use iog_types::JobId;

    fn digest(n: u8) -> Option<BlobId> {
        Some(BlobId::of(&[n]))
    }

    #[test]
    fn replicas_settle_by_a_quorum_that_outnumbers_the_rest() {
        assert_eq!(judge(&[digest(1), None], 2, 5), Verdict::Wait);
        let agreed = judge(&[digest(1), digest(1)], 2, 5);
        assert_eq!(agreed, Verdict::Accept { output: digest(1).unwrap(), valid: vec![0, 1], wrong: vec![] });
        assert_eq!(judge(&[digest(1), digest(2)], 2, 5), Verdict::More(1));
        let settled = judge(&[digest(1), digest(2), digest(2)], 2, 5);
        assert_eq!(settled, Verdict::Accept { output: digest(2).unwrap(), valid: vec![1, 2], wrong: vec![0] });
        // Three distinct results under `replicate 3`: two more are needed at least.
        assert_eq!(judge(&[digest(1), digest(2), digest(3)], 3, 9), Verdict::More(2));
        // A tie is no quorum.
        assert_eq!(judge(&[digest(1), digest(2), digest(1), digest(2)], 2, 5), Verdict::More(1));
        // Three cheats that disagree with each other lose to two honest results.
        let outvoted = judge(&[digest(3), digest(4), digest(5), digest(1), digest(1)], 2, 5);
        let expected = Verdict::Accept { output: digest(1).unwrap(), valid: vec![3, 4], wrong: vec![0, 1, 2] };
        assert_eq!(outvoted, expected);
        assert_eq!(judge(&[digest(1), digest(2)], 2, 2), Verdict::NoQuorum { n_results: 2, n_digests: 2 });
        // One result is enough where one is needed (a trusted worker).
        let alone = judge(&[digest(7)], 1, 5);
        assert_eq!(alone, Verdict::Accept { output: digest(7).unwrap(), valid: vec![0], wrong: vec![] });
    }

    #[test]
    fn adaptive_checks_new_workers_always_and_trusted_ones_at_their_rate() {
        let task = |idx| TaskId::new(JobId(42), idx);
        assert!((0..100).all(|idx| adaptive_checks(7, task(idx), ADAPTIVE_STREAK_MIN - 1)));
        let n = 20_000;
        let rate = |streak| (0..n).filter(|idx| adaptive_checks(7, task(*idx), streak)).count() as f64 / n as f64;
        assert!((rate(10) - 0.10).abs() < 0.01, "{}", rate(10));
        assert!((rate(1_000) - 0.05).abs() < 0.01, "{}", rate(1_000));
        // Another key draws other tasks.
        let differ = (0..1_000).filter(|idx| adaptive_checks(7, task(*idx), 10) != adaptive_checks(8, task(*idx), 10));
        assert!(differ.count() > 100);
    }
}
