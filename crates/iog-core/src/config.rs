/// Limits and timings of the coordinator core. Every field has a documented
/// default; tests shrink the timings to run fast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// How often a worker sends a heartbeat. Default 5000 ms.
    pub heartbeat_interval_ms: u64,
    /// A worker that sends no heartbeat for this many intervals is declared
    /// dead and its leases lapse. Default 3, so a dead worker is detected
    /// within 15 s by default.
    pub missed_heartbeats_max: u32,
    /// Attempts a task gets when its job does not say. Default 5.
    pub max_attempts_default: u32,
    /// Upper bound on any job's `max_attempts`. Default 100.
    pub max_attempts_limit: u32,
    /// First retry waits this long; each further retry doubles it. Default 250 ms.
    pub retry_backoff_base_ms: u64,
    /// Retries never wait longer than this. Default 30 000 ms.
    pub retry_backoff_max_ms: u64,
    /// Devices in one group of a worker's offer (for the CPU: tasks at once)
    /// beyond which the offer is clamped. Default 64.
    pub slots_per_worker_max: u32,
    /// A lease lapses when this many heartbeats in a row from its holder do
    /// not list the task (the assignment was lost, or the worker dropped
    /// it). Default 2: one heartbeat may have crossed the assignment.
    pub unconfirmed_heartbeats_max: u32,
    /// How placement ranks the devices that meet a task's requirements.
    pub rank: iog_sched::index::RankWeights,
    /// Longest a gang job holds the devices it found while it waits for
    /// the rest of its gang. Default 30 000 ms.
    pub gang_reserve_ms: u64,
    /// After a hold timed out, the gang waits this long before it holds
    /// devices again, so others can use them. Default 5 000 ms.
    pub gang_retry_ms: u64,
    /// Hardware challenges failed in a row after which the worker's stake
    /// is slashed (and again after each further run of as many). Default 3:
    /// one failure can be bad luck or a busy machine, three in a row are a
    /// claim the hardware does not meet.
    pub challenge_failures_slash: u32,
    /// Share of its active stake a worker loses each time, in basis points.
    /// Default 1 000 (10 %).
    pub challenge_slash_bps: u32,
    /// Hardware challenges: every worker takes one when it connects and
    /// then about this often (each wait drawn between half and one and a
    /// half times it, from the worker's id, so challenges cannot be
    /// foreseen from the clock alone). 0, the default here, turns
    /// challenges off; the coordinator's default is one hour.
    pub challenge_interval_ms: u64,
    /// After a failed challenge (or when one fell due while the worker ran
    /// tasks, which would slow it) the next comes this much later.
    /// Default 30 000 ms.
    pub challenge_retry_ms: u64,
    /// A challenge round that has not been reported checked this long after
    /// it started counts as failed (its messages were lost, or the shell
    /// lost track of it), so a worker is never kept from tasks by a round
    /// that will not end. Default 300 000 ms.
    pub challenge_timeout_ms: u64,
    /// Share of its active stake a worker loses for each result a quorum of
    /// other workers proved wrong, in basis points. Default 2 000 (20 %).
    pub wrong_result_slash_bps: u32,
    /// A spot check not reported this long after it was asked for is asked
    /// for again; after three asks the job fails (the coordinator cannot
    /// check the run, which is not the worker's fault). Default 60 000 ms.
    pub spot_check_timeout_ms: u64,
    /// A worker whose result a quorum proved wrong takes no new tasks for
    /// this long, so honest workers do not spend their time checking it.
    /// Default 3 600 000 ms (an hour); the suspension is not kept across a
    /// coordinator restart.
    pub wrong_result_suspend_ms: u64,
    /// How long a task may hold its lease when its job sets no
    /// `task_timeout_ms`: past it the lease lapses like a job's own timeout
    /// (it counts against the holder), so a worker that keeps saying it
    /// runs a task it dropped cannot hold the task forever. 0: no limit.
    /// Default [`TASK_TIMEOUT_DEFAULT_MS`] (six hours).
    pub task_timeout_default_ms: u64,
    /// The secret key of adaptive verification's draws: which results of a
    /// trusted worker are checked again. The coordinator draws one at each
    /// start and tells no one, so a worker cannot foresee the checks;
    /// simulations set it from their seed. Default 0.
    pub verify_key: u64,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            heartbeat_interval_ms: 5_000,
            missed_heartbeats_max: 3,
            max_attempts_default: 5,
            max_attempts_limit: 100,
            retry_backoff_base_ms: 250,
            retry_backoff_max_ms: 30_000,
            slots_per_worker_max: 64,
            unconfirmed_heartbeats_max: 2,
            rank: iog_sched::index::RankWeights::default(),
            gang_reserve_ms: 30_000,
            gang_retry_ms: 5_000,
            challenge_failures_slash: 3,
            challenge_slash_bps: 1_000,
            challenge_interval_ms: 0,
            challenge_retry_ms: 30_000,
            challenge_timeout_ms: 300_000,
            wrong_result_slash_bps: 2_000,
            wrong_result_suspend_ms: 3_600_000,
            spot_check_timeout_ms: 60_000,
            task_timeout_default_ms: TASK_TIMEOUT_DEFAULT_MS,
            verify_key: 0,
        }
    }
}

/// The task timeout of jobs that set none, unless configured otherwise:
/// six hours, far above any built-in workload's task and short enough that
/// a stalled lease does not hold a job for days.
pub const TASK_TIMEOUT_DEFAULT_MS: u64 = 6 * 3_600_000;

impl Config {
    /// The task timeout of a job that sets `own` (or none).
    pub fn task_timeout_ms(&self, own: Option<u64>) -> Option<u64> {
        own.or((self.task_timeout_default_ms > 0).then_some(self.task_timeout_default_ms))
    }

    /// How long after its last heartbeat a worker is declared dead.
    pub fn worker_timeout_ms(&self) -> u64 {
        self.heartbeat_interval_ms.saturating_mul(u64::from(self.missed_heartbeats_max.max(1)))
    }

    /// The wait before the retry that follows attempt number `attempts` (1-based).
    pub fn retry_backoff_ms(&self, attempts: u32) -> u64 {
        let doublings = attempts.saturating_sub(1).min(32);
        self.retry_backoff_base_ms.saturating_mul(1u64 << doublings).min(self.retry_backoff_max_ms)
    }
}
