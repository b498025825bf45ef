//! A simulated worker: what the real agent keeps, without its IO.

use std::collections::BTreeMap;

use iog_core::RunningTask;
use iog_ledger::Amount;
use iog_types::{BlobId, LeaseToken, TaskId, WorkerId};
use rand_chacha::ChaCha8Rng;

use crate::cheat::{Cheat, CheatClass, right_elsewhere, right_output};

/// Which way a partition blocks a worker's traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blocked {
    /// Nothing gets through.
    Both,
    /// The worker's messages are lost; the coordinator's arrive.
    Up,
    /// The coordinator's messages are lost; the worker's arrive.
    Down,
}

#[derive(Debug, Clone)]
pub(crate) struct SimWorker {
    pub(crate) id: WorkerId,
    /// Bumped at every crash, so events of an earlier life are ignored.
    pub(crate) incarnation: u64,
    pub(crate) up: bool,
    /// The open session, 0 when not connected.
    pub(crate) session: u64,
    /// Tasks being computed, by the lease they run under.
    pub(crate) running: BTreeMap<TaskId, LeaseToken>,
    /// Finished tasks whose result the coordinator has not acknowledged.
    pub(crate) unacked: BTreeMap<TaskId, (LeaseToken, BlobId)>,
    /// Runs tasks ten times slower than the others.
    pub(crate) slow: bool,
    /// Ignores revocations and reports results of lapsed leases anyway.
    pub(crate) zombie: bool,
    pub(crate) partition: Option<(Blocked, u64)>,
    pub(crate) reconnect_backoff_ms: u64,
    /// What its owner asks per device-hour (the owner's setting: it
    /// survives crashes and lost data dirs).
    pub(crate) price_io_per_device_hour: Amount,
    /// Its owner is using the machine: it runs nothing and takes no task.
    /// A state of the machine, not of the process, so it survives crashes.
    pub(crate) owner_busy: bool,
    /// How the worker makes up its results, `None` when it computes them.
    /// The owner's nature, so it survives crashes and lost data dirs.
    pub(crate) cheat: Option<Cheat>,
    /// An honest worker whose device computes in other precision: its
    /// right outputs are other bytes than the rest's, the same result.
    pub(crate) elsewhere: bool,
}

impl SimWorker {
    pub(crate) fn new(
        id: WorkerId,
        slow: bool,
        zombie: bool,
        price_io_per_device_hour: Amount,
        cheat: Option<CheatClass>,
    ) -> SimWorker {
        SimWorker {
            id,
            incarnation: 0,
            up: true,
            session: 0,
            running: BTreeMap::new(),
            unacked: BTreeMap::new(),
            slow,
            zombie,
            partition: None,
            reconnect_backoff_ms: 100,
            price_io_per_device_hour,
            owner_busy: false,
            elsewhere: false,
            cheat: cheat.map(Cheat::new),
        }
    }

    /// The output the worker returns for a task's input: the right one, or
    /// its cheat's. Cheats draw from `cheat_rng`, their own stream.
    pub(crate) fn output(&mut self, input: BlobId, intermittent_per_mille: u32, cheat_rng: &mut ChaCha8Rng) -> BlobId {
        match &mut self.cheat {
            Some(cheat) => cheat.output(input, intermittent_per_mille, cheat_rng),
            None if self.elsewhere => right_elsewhere(input),
            None => right_output(input),
        }
    }

    /// The worker's cheat class, `None` for an honest worker.
    pub(crate) fn cheat_class(&self) -> Option<CheatClass> {
        self.cheat.as_ref().map(|cheat| cheat.class)
    }

    /// What the worker says it holds: running tasks and unacknowledged results.
    pub(crate) fn held(&self) -> Vec<RunningTask> {
        let running = self.running.iter().map(|(task_id, token)| RunningTask { task_id: *task_id, token: *token });
        let unacked = self.unacked.iter().map(|(task_id, (token, _))| RunningTask { task_id: *task_id, token: *token });
        running.chain(unacked).collect()
    }

    /// Whether a partition blocks a message now (`up` = worker to coordinator).
    pub(crate) fn blocked(&self, up: bool, now: u64) -> bool {
        match self.partition {
            Some((_, until)) if until <= now => false,
            Some((Blocked::Both, _)) => true,
            Some((Blocked::Up, _)) => up,
            Some((Blocked::Down, _)) => !up,
            None => false,
        }
    }
}
