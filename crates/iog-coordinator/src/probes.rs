//! The probe directory: where each online worker answers peers' probes and
//! its network coordinate as last reported, so that each session can name a
//! few random peers for its worker to measure.
//!
//! Coordinates are soft state: they are not stored, and after a restart
//! each worker's next heartbeat brings its coordinate back.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;

use iog_proto::stream::ProbePeer;
use iog_sched::Coord;
use iog_types::WorkerId;
use rand::Rng;

/// Peers named to a worker per probe round. Vivaldi's paper finds a few
/// random peers per node enough for coordinates to converge; more costs
/// probe traffic without making them better.
pub(crate) const PEERS_PER_ROUND: usize = 4;

/// Probe rounds per worker, by default one every this many milliseconds.
/// With [`PEERS_PER_ROUND`] peers a new worker's coordinate settles within
/// a minute or two; at 100 000 workers it is 10 000 small messages a second.
pub const PROBE_INTERVAL_MS_DEFAULT: u64 = 10_000;

struct Entry {
    session_id: u64,
    addr: SocketAddr,
    coord: Coord,
    /// Where it sits in `Inner::order`.
    slot: usize,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<WorkerId, Entry>,
    /// Every listed worker once, for drawing peers at random in O(1).
    order: Vec<WorkerId>,
}

/// Online workers that answer probes.
#[derive(Default)]
pub(crate) struct Directory {
    inner: Mutex<Inner>,
}

impl Directory {
    /// Lists a worker's probe address for its session (replacing what an
    /// earlier session of it listed).
    pub(crate) fn join(&self, worker_id: &WorkerId, session_id: u64, addr: SocketAddr) {
        let mut inner = self.inner.lock().expect("probe directory lock");
        if let Some(entry) = inner.entries.get_mut(worker_id) {
            entry.session_id = session_id;
            entry.addr = addr;
            return;
        }
        let slot = inner.order.len();
        inner.order.push(worker_id.clone());
        inner.entries.insert(worker_id.clone(), Entry { session_id, addr, coord: Coord::new(), slot });
    }

    /// Removes a worker when the session that listed it ends.
    pub(crate) fn leave(&self, worker_id: &WorkerId, session_id: u64) {
        let mut inner = self.inner.lock().expect("probe directory lock");
        if inner.entries.get(worker_id).is_none_or(|entry| entry.session_id != session_id) {
            return;
        }
        let entry = inner.entries.remove(worker_id).expect("checked above");
        inner.order.swap_remove(entry.slot);
        if let Some(moved) = inner.order.get(entry.slot).cloned() {
            inner.entries.get_mut(&moved).expect("listed workers have entries").slot = entry.slot;
        }
    }

    /// Records a worker's reported coordinate, for the peers that probe it.
    pub(crate) fn set_coord(&self, worker_id: &WorkerId, coord: Coord) {
        let mut inner = self.inner.lock().expect("probe directory lock");
        if let Some(entry) = inner.entries.get_mut(worker_id) {
            entry.coord = coord;
        }
    }

    /// Up to `n` distinct peers other than `worker_id`, drawn at random.
    pub(crate) fn peers(&self, worker_id: &WorkerId, n: usize, rng: &mut impl Rng) -> Vec<ProbePeer> {
        let inner = self.inner.lock().expect("probe directory lock");
        let others = inner.order.len() - usize::from(inner.entries.contains_key(worker_id));
        let n = n.min(others);
        let mut chosen: Vec<usize> = Vec::with_capacity(n);
        // Rejection sampling: n is tiny next to the directory, so a draw
        // is rarely repeated; when the directory is as small as n, every
        // other worker is named.
        while chosen.len() < n {
            let slot = rng.random_range(0..inner.order.len());
            if inner.order[slot] != *worker_id && !chosen.contains(&slot) {
                chosen.push(slot);
            }
        }
        chosen
            .into_iter()
            .map(|slot| {
                let peer_id = &inner.order[slot];
                let entry = &inner.entries[peer_id];
                ProbePeer { worker_id: peer_id.clone(), addr: entry.addr, coord: entry.coord }
            })
            .collect()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.inner.lock().expect("probe directory lock").order.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn id(name: &str) -> WorkerId {
        WorkerId(name.to_owned())
    }

    #[test]
    fn peers_are_distinct_others_and_leave_follows_the_session() {
        let directory = Directory::default();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for (idx, name) in ["a", "b", "c", "d", "e", "f"].into_iter().enumerate() {
            directory.join(&id(name), 1, SocketAddr::from(([127, 0, 0, 1], 9000 + idx as u16)));
        }
        for _ in 0..100 {
            let peers = directory.peers(&id("a"), PEERS_PER_ROUND, &mut rng);
            assert_eq!(peers.len(), PEERS_PER_ROUND);
            assert!(peers.iter().all(|p| p.worker_id != id("a")));
            let mut ids: Vec<&WorkerId> = peers.iter().map(|p| &p.worker_id).collect();
            ids.sort();
            ids.dedup();
            assert_eq!(ids.len(), PEERS_PER_ROUND);
        }
        // A stale session's end does not remove the worker's newer listing.
        directory.join(&id("b"), 2, SocketAddr::from(([127, 0, 0, 1], 9100)));
        directory.leave(&id("b"), 1);
        assert_eq!(directory.len(), 6);
        directory.leave(&id("b"), 2);
        directory.leave(&id("c"), 1);
        directory.leave(&id("d"), 1);
        directory.leave(&id("e"), 1);
        assert_eq!(directory.len(), 2);
        let peers = directory.peers(&id("a"), PEERS_PER_ROUND, &mut rng);
        assert_eq!(peers.iter().map(|p| p.worker_id.clone()).collect::<Vec<_>>(), [id("f")]);
        // A worker that is not listed gets every listed one, up to n.
        assert_eq!(directory.peers(&id("z"), PEERS_PER_ROUND, &mut rng).len(), 2);
    }
}
