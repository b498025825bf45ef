//! Fair share between submitters.
//!
//! The policy is max-min fairness on devices in use: when a device frees,
//! the submitter with waiting work that holds the fewest devices right now
//! goes next (ties: the one that has waited longest). A submitter alone on
//! the network gets every device; when a second one arrives with work, each
//! device that frees goes to whoever holds fewer, so the two converge on
//! equal shares as tasks end, however large the first one's job is. Within
//! one submitter, older jobs go first.
//!
//! Usage counts devices (a task on 4 GPUs counts 4), not tasks.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

#[derive(Debug, Clone, Copy)]
struct Standing {
    in_use: u64,
    /// Set while the submitter has waiting work: its place among equals.
    waiting_since: Option<u64>,
}

/// Submitters ordered by the devices they hold. See the module documentation.
#[derive(Debug)]
pub struct FairShare<S> {
    standing: HashMap<S, Standing>,
    /// Submitters with waiting work: (devices in use, waiting since, submitter).
    order: BTreeSet<(u64, u64, S)>,
    counter: u64,
}

impl<S> Default for FairShare<S> {
    fn default() -> FairShare<S> {
        FairShare { standing: HashMap::new(), order: BTreeSet::new(), counter: 0 }
    }
}

impl<S: Ord + Hash + Clone> FairShare<S> {
    /// Says whether a submitter has work waiting for a device.
    pub fn set_waiting(&mut self, submitter: &S, waiting: bool) {
        let standing = self.standing.entry(submitter.clone()).or_insert(Standing { in_use: 0, waiting_since: None });
        match (standing.waiting_since, waiting) {
            (None, true) => {
                self.counter += 1;
                standing.waiting_since = Some(self.counter);
                self.order.insert((standing.in_use, self.counter, submitter.clone()));
            }
            (Some(since), false) => {
                self.order.remove(&(standing.in_use, since, submitter.clone()));
                standing.waiting_since = None;
            }
            _ => {}
        }
        self.forget_if_idle(submitter);
    }

    /// `n` more devices now run the submitter's work.
    pub fn add_use(&mut self, submitter: &S, n: u64) {
        self.change_use(submitter, |in_use| in_use.saturating_add(n));
    }

    /// `n` devices no longer run the submitter's work.
    pub fn remove_use(&mut self, submitter: &S, n: u64) {
        self.change_use(submitter, |in_use| in_use.saturating_sub(n));
    }

    /// Devices the submitter holds now.
    pub fn in_use(&self, submitter: &S) -> u64 {
        self.standing.get(submitter).map_or(0, |s| s.in_use)
    }

    /// Submitters with waiting work, the one that should go next first.
    pub fn turn_order(&self) -> impl Iterator<Item = &S> + '_ {
        self.order.iter().map(|(_, _, submitter)| submitter)
    }

    /// The first submitter in turn order that `skip` does not pass over.
    pub fn next_where(&self, skip: impl Fn(&S) -> bool) -> Option<&S> {
        self.turn_order().find(|submitter| !skip(submitter))
    }

    /// Submitters the structure remembers (holding devices or waiting).
    pub fn n_known(&self) -> usize {
        self.standing.len()
    }

    fn change_use(&mut self, submitter: &S, change: impl FnOnce(u64) -> u64) {
        let standing = self.standing.entry(submitter.clone()).or_insert(Standing { in_use: 0, waiting_since: None });
        let new = change(standing.in_use);
        if let Some(since) = standing.waiting_since {
            self.order.remove(&(standing.in_use, since, submitter.clone()));
            self.order.insert((new, since, submitter.clone()));
        }
        standing.in_use = new;
        self.forget_if_idle(submitter);
    }

    /// A submitter holding nothing and waiting for nothing is forgotten, so
    /// memory follows the active submitters, not every one ever seen.
    fn forget_if_idle(&mut self, submitter: &S) {
        if self.standing.get(submitter).is_some_and(|s| s.in_use == 0 && s.waiting_since.is_none()) {
            self.standing.remove(submitter);
        }
    }

    /// Checks the bookkeeping; tests call it after every step.
    pub fn check(&self) -> Result<(), String> {
        let waiting = self.standing.values().filter(|s| s.waiting_since.is_some()).count();
        if waiting != self.order.len() {
            return Err(format!("{waiting} submitters wait but {} are in turn order", self.order.len()));
        }
        for (in_use, since, submitter) in &self.order {
            let s = self.standing.get(submitter).ok_or("an ordered submitter has no standing")?;
            if s.in_use != *in_use || s.waiting_since != Some(*since) {
                return Err("a submitter's place in turn order is stale".to_owned());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_submitter_holding_fewer_devices_goes_first() {
        let mut fair: FairShare<&str> = FairShare::default();
        fair.set_waiting(&"big", true);
        fair.add_use(&"big", 100);
        fair.set_waiting(&"small", true);
        assert_eq!(fair.next_where(|_| false), Some(&"small"));
        fair.add_use(&"small", 101);
        assert_eq!(fair.next_where(|_| false), Some(&"big"));
        assert_eq!(fair.next_where(|s| *s == "big"), Some(&"small"));
        fair.set_waiting(&"small", false);
        fair.remove_use(&"small", 101);
        assert_eq!(fair.n_known(), 1, "an idle submitter is forgotten");
        fair.check().unwrap();
    }
}
