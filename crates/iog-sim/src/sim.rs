//! The simulated world: virtual time, a queue of events, and the shells.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::hash::{DefaultHasher, Hash, Hasher};

use iog_core::{Action, Change, Core, Event, NewJob, RunningTask};
use iog_sched::{Offer, Requirements};
use iog_types::{BlobId, DeviceKind, JobId, JobState, LeaseToken, TaskId, Verify, WorkerId, replica_of};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::Violation;
use crate::cheat::{CheatClass, Cheats, agreement_class, chain_next, is_right, right_output};
use crate::durable::DurableModel;
use crate::invariants::OwnerPauses;
use iog_core::Payments;
use iog_ledger::billing::JobTerms;
use iog_ledger::{AccountId, Address, Amount, Ledger, TransferId};

use crate::verify::{Judged, Policy, Verdict, VerifyMix, VerifyStats, WRONG_RESULT_REASON, budget_runs};
use crate::worker::{Blocked, SimWorker};

/// The network fee the simulated coordinator takes: 2.5 %.
const SIM_FEE_BPS: u32 = 250;
/// Every job's cap per device-hour, in whole IO; each worker asks between
/// half of it and all of it, so every job can be placed on every worker.
const SIM_JOB_PRICE_IO: u64 = 3_600;
/// How long an owner who comes back uses the machine, in ms.
const OWNER_BUSY_MS: std::ops::RangeInclusive<u64> = 100..=2_000;
/// The submitters jobs take turns between: job `i` is `SUBMITTERS[i % 3]`'s.
const SUBMITTERS: [&str; 3] = ["payer-a", "payer-b", "payer-c"];
/// The latency bound of every gang job. The simulated workers report no
/// round trip, so any pair of them is within it.
const SIM_GANG_LATENCY_MS_MAX: u32 = 1_000;
/// The words of the reason the core fails a job whose task's runs never
/// agreed with.
const NO_QUORUM_REASON: &str = "no agreed result";
/// How the core words a job that failed because no run of a task passed
/// its spot check.
const NO_SPOT_PASS_REASON: &str = "no result that passed its spot check";

/// How often each fault happens, in parts per thousand of its opportunities.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Each message is lost.
    pub drop_per_mille: u32,
    /// Each message arrives twice.
    pub duplicate_per_mille: u32,
    /// Each message waits up to this long on top of 1 ms, so messages overtake each other.
    pub delay_max_ms: u64,
    /// At each chaos tick, a random worker is cut off (both ways or one way).
    pub partition_per_mille: u32,
    pub partition_max_ms: u64,
    /// At each chaos tick, a random worker crashes and restarts later.
    pub worker_crash_per_mille: u32,
    /// Of those crashes, the ones that lose the data dir (a new identity).
    pub worker_wipe_per_mille: u32,
    /// At each chaos tick, the coordinator crashes and restarts from its store.
    pub coordinator_crash_per_mille: u32,
    /// At each coordinator step, it crashes after deciding and before writing.
    pub crash_before_persist_per_mille: u32,
    /// At each chaos tick, the coordinator's clock jumps (either way).
    pub clock_jump_per_mille: u32,
    pub clock_jump_max_ms: u64,
    /// Each task run fails on the worker.
    pub task_fail_per_mille: u32,
    /// Workers that run ten times slower.
    pub slow_worker_per_mille: u32,
    /// Workers that ignore revocations and report results of lapsed leases.
    pub zombie_per_mille: u32,
    /// Jobs their submitter cancels at a random moment.
    pub cancel_per_mille: u32,
    /// Jobs with few attempts per task (2 to 4), so that failing jobs happen.
    pub few_attempts_per_mille: u32,
    /// Jobs whose budget covers only about half their tasks, so that
    /// escrows run dry.
    pub tight_budget_per_mille: u32,
    /// At each chaos tick, a connected worker's owner comes back and uses
    /// the machine for a while: the worker stops its tasks and pauses.
    pub owner_return_per_mille: u32,
    /// Hardware challenge rounds a worker fails (a busy moment past the
    /// deadline, or a lie), in parts per thousand.
    pub challenge_fail_per_mille: u32,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            drop_per_mille: 20,
            duplicate_per_mille: 20,
            delay_max_ms: 30,
            partition_per_mille: 100,
            partition_max_ms: 3_000,
            worker_crash_per_mille: 100,
            worker_wipe_per_mille: 300,
            coordinator_crash_per_mille: 30,
            crash_before_persist_per_mille: 2,
            clock_jump_per_mille: 30,
            clock_jump_max_ms: 2_000,
            task_fail_per_mille: 20,
            slow_worker_per_mille: 100,
            zombie_per_mille: 100,
            cancel_per_mille: 100,
            few_attempts_per_mille: 300,
            tight_budget_per_mille: 150,
            owner_return_per_mille: 50,
            challenge_fail_per_mille: 100,
        }
    }
}

impl Faults {
    /// No faults at all: a healthy network.
    pub fn none() -> Faults {
        Faults {
            drop_per_mille: 0,
            duplicate_per_mille: 0,
            delay_max_ms: 0,
            partition_per_mille: 0,
            partition_max_ms: 0,
            worker_crash_per_mille: 0,
            worker_wipe_per_mille: 0,
            coordinator_crash_per_mille: 0,
            crash_before_persist_per_mille: 0,
            clock_jump_per_mille: 0,
            clock_jump_max_ms: 0,
            task_fail_per_mille: 0,
            slow_worker_per_mille: 0,
            zombie_per_mille: 0,
            cancel_per_mille: 0,
            few_attempts_per_mille: 0,
            tight_budget_per_mille: 0,
            owner_return_per_mille: 0,
            challenge_fail_per_mille: 0,
        }
    }
}

/// The shape of one simulated run.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub n_workers: u32,
    pub n_jobs: u32,
    /// Tasks of each job that is not a gang.
    pub tasks_per_job: u32,
    /// Jobs that are gangs, in parts per thousand: all their unfinished
    /// tasks run at once on distinct workers, or none do. A gang has
    /// `min(tasks_per_job, n_workers / 2, gang_size_max)` tasks (at least
    /// one), so it fits even while some workers are down. Part of the
    /// workload, not a fault: [`Faults::none`] keeps it.
    pub gang_per_mille: u32,
    /// Most tasks of a gang job.
    pub gang_size_max: u32,
    /// Jobs that are not gangs and are chained, in parts per thousand:
    /// their tasks are made one after another, each from the accepted
    /// output of the one before. Part of the workload, not a fault.
    pub chained_per_mille: u32,
    /// Jobs that bound one run of a task (`task_timeout_ms`, 1–3 s of
    /// virtual time), in parts per thousand; a lease past it lapses.
    pub task_timeout_per_mille: u32,
    /// Tasks each worker runs at once.
    pub slots: u32,
    /// How long a task takes on a normal worker (each run varies up to twice this).
    pub task_ms: u64,
    /// Faults happen only before this virtual time; jobs are submitted in its first half.
    pub fault_window_ms: u64,
    /// After the fault window, every job must be final within this long.
    pub liveness_bound_ms: u64,
    /// How often a chaos tick rolls for partitions, crashes and clock jumps.
    pub chaos_interval_ms: u64,
    /// Check the core's whole bookkeeping every this many steps (1 = every step).
    pub core_check_every: u64,
    pub faults: Faults,
    /// The verification policies jobs draw from. Part of the workload, not
    /// a fault: [`Faults::none`] keeps it.
    pub verify: VerifyMix,
    /// The workers that cheat. Not a fault of the network either: it stays
    /// under [`Faults::none`]; use [`Cheats::none`] for an honest fleet.
    pub cheats: Cheats,
    /// The coordinator's settings; the simulator keys adaptive
    /// verification's draws (`verify_key`) from the seed.
    pub core: iog_core::Config,
    /// Keep a line per step to replay a run.
    pub trace: bool,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            n_workers: 8,
            n_jobs: 4,
            tasks_per_job: 25,
            gang_per_mille: 250,
            chained_per_mille: 150,
            gang_size_max: 6,
            task_timeout_per_mille: 250,
            slots: 2,
            task_ms: 50,
            fault_window_ms: 10_000,
            liveness_bound_ms: 60_000,
            chaos_interval_ms: 250,
            core_check_every: 1,
            faults: Faults::default(),
            verify: VerifyMix::default(),
            cheats: Cheats::default(),
            core: iog_core::Config {
                heartbeat_interval_ms: 200,
                missed_heartbeats_max: 3,
                max_attempts_default: 30,
                retry_backoff_base_ms: 20,
                retry_backoff_max_ms: 500,
                // Gangs hold devices briefly and try again soon, so that
                // holds time out, and gangs retry, within a run's faults.
                gang_reserve_ms: 1_000,
                gang_retry_ms: 300,
                // Challenges on every connect and about every 2 s, so that
                // rounds, failures and retries happen within a run.
                challenge_interval_ms: 2_000,
                challenge_retry_ms: 500,
                ..iog_core::Config::default()
            },
            trace: false,
        }
    }
}

/// Counts of what a run did, faults by class.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub steps: u64,
    pub messages: u64,
    pub dropped: u64,
    pub duplicated: u64,
    pub partitions: u64,
    pub worker_crashes: u64,
    pub worker_wipes: u64,
    pub coordinator_crashes: u64,
    pub crashes_before_persist: u64,
    pub clock_jumps: u64,
    pub task_failures: u64,
    pub stale_results: u64,
    pub jobs_done: u64,
    pub jobs_failed: u64,
    pub jobs_cancelled: u64,
    pub commits: u64,
    /// Committed tasks paid out of their job's escrow.
    pub tasks_paid: u64,
    /// Jobs that failed because their escrow was spent.
    pub escrows_spent: u64,
    /// Times a worker's owner came back and paused it.
    pub owner_returns: u64,
    /// Leases that lapsed at their job's task timeout.
    pub task_timeouts: u64,
    /// Hardware challenge rounds answered, and those that failed.
    pub challenges: u64,
    pub challenges_failed: u64,
    /// Leases handed back to the queue because their worker's owner came back.
    pub tasks_yielded: u64,
    /// Tasks of all jobs.
    pub tasks: u64,
    /// Jobs that are gangs, and those of them that were done.
    pub gang_jobs: u64,
    pub gang_jobs_done: u64,
    /// Chained jobs whose links hold several tasks, and those of them that
    /// were done.
    pub wide_chain_jobs: u64,
    pub wide_chain_jobs_done: u64,
    /// Times a running gang was stopped because one of its members' lease
    /// ended without a commit, to start again together.
    pub gang_restarts: u64,
    /// Leases of gang members handed back on those restarts.
    pub gang_yields: u64,
    /// Tasks with an accepted result, and the results accepted (each one
    /// paid once, when its job's escrow covers it): more than one per task
    /// where replicas agreed.
    pub tasks_settled: u64,
    pub results_accepted: u64,
    /// What verification did, by policy and by cheat class.
    pub verify: VerifyStats,
    pub end_ms: u64,
}

impl Stats {
    /// Adds another run's counts.
    pub fn add(&mut self, other: &Stats) {
        self.steps += other.steps;
        self.messages += other.messages;
        self.dropped += other.dropped;
        self.duplicated += other.duplicated;
        self.partitions += other.partitions;
        self.worker_crashes += other.worker_crashes;
        self.worker_wipes += other.worker_wipes;
        self.coordinator_crashes += other.coordinator_crashes;
        self.crashes_before_persist += other.crashes_before_persist;
        self.clock_jumps += other.clock_jumps;
        self.task_failures += other.task_failures;
        self.stale_results += other.stale_results;
        self.jobs_done += other.jobs_done;
        self.jobs_failed += other.jobs_failed;
        self.jobs_cancelled += other.jobs_cancelled;
        self.commits += other.commits;
        self.tasks_paid += other.tasks_paid;
        self.escrows_spent += other.escrows_spent;
        self.owner_returns += other.owner_returns;
        self.challenges += other.challenges;
        self.task_timeouts += other.task_timeouts;
        self.challenges_failed += other.challenges_failed;
        self.tasks_yielded += other.tasks_yielded;
        self.tasks += other.tasks;
        self.gang_jobs += other.gang_jobs;
        self.gang_jobs_done += other.gang_jobs_done;
        self.wide_chain_jobs += other.wide_chain_jobs;
        self.wide_chain_jobs_done += other.wide_chain_jobs_done;
        self.gang_restarts += other.gang_restarts;
        self.gang_yields += other.gang_yields;
        self.tasks_settled += other.tasks_settled;
        self.results_accepted += other.results_accepted;
        self.verify.add(&other.verify);
        self.end_ms = self.end_ms.max(other.end_ms);
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The first broken rule, which ended the run; `None` when every rule held.
    pub violation: Option<Violation>,
    pub stats: Stats,
    /// A hash of every step; equal for equal seeds.
    pub trace_hash: u64,
    /// One line per step when tracing.
    pub trace: Vec<String>,
}

/// A worker's messages to the coordinator. `Pause`: the owner is using the
/// machine and the worker stopped its tasks; `Resume`: the machine is idle again.
#[derive(Debug, Clone)]
enum Up {
    Hello {
        held: Vec<RunningTask>,
        offer: Offer,
    },
    Heartbeat {
        held: Vec<RunningTask>,
    },
    Done {
        task_id: TaskId,
        token: LeaseToken,
        output: BlobId,
    },
    Failed {
        task_id: TaskId,
        token: LeaseToken,
    },
    Pause,
    Resume,
    /// The answer to a challenge round, as the coordinator's check found it.
    Challenged {
        round: u64,
        passed: bool,
    },
}

#[derive(Debug, Clone)]
enum Down {
    Assign {
        task_id: TaskId,
        token: LeaseToken,
        input: BlobId,
    },
    Revoke {
        task_id: TaskId,
        token: LeaseToken,
    },
    Ack {
        task_id: TaskId,
        token: LeaseToken,
    },
    /// The connection is gone (closed by the coordinator, or refused because it is down).
    Closed,
    /// Take hardware challenge round `round`.
    Challenge {
        round: u64,
    },
}

/// What happens in the world. `OwnerIdle`: the owner of the machine in
/// `slot` stops using it.
#[derive(Debug, Clone)]
enum Ev {
    ToCoord {
        slot: usize,
        session: u64,
        msg: Up,
    },
    ToWorker {
        slot: usize,
        incarnation: u64,
        session: u64,
        msg: Down,
    },
    Submit {
        job_idx: u32,
    },
    Cancel {
        job_idx: u32,
    },
    CoordTick,
    CoordRestart,
    Heartbeat {
        slot: usize,
        incarnation: u64,
    },
    TaskDone {
        slot: usize,
        incarnation: u64,
        task_id: TaskId,
        token: LeaseToken,
        input: BlobId,
    },
    WorkerRestart {
        slot: usize,
    },
    Reconnect {
        slot: usize,
        incarnation: u64,
    },
    OwnerIdle {
        slot: usize,
    },
    /// A worker finished its challenge round in `session`.
    ChallengeAnswered {
        slot: usize,
        incarnation: u64,
        session: u64,
        round: u64,
        passed: bool,
    },
    /// The coordinator's spot check of a run is done (dropped if the
    /// coordinator restarted since it began).
    SpotChecked {
        task_id: TaskId,
        passed: bool,
        coordinator: u64,
    },
    /// The coordinator made a chained job's next input (dropped if the
    /// coordinator restarted since it began).
    ChainInputReady {
        job_id: JobId,
        task_idx: u32,
        inputs: Vec<BlobId>,
        coordinator: u64,
    },
    /// The coordinator's comparison of a task's replicas is done (dropped
    /// if the coordinator restarted since it began).
    OutputsCompared {
        task_id: TaskId,
        outputs: Vec<BlobId>,
        classes: Vec<u8>,
        coordinator: u64,
    },
    Chaos,
}

/// The input of task `task_idx` of a job: distinct across jobs, so that
/// a replayed output of another job's task is wrong too.
fn task_input(job_id: JobId, task_idx: u32) -> BlobId {
    BlobId::of(&[job_id.0.to_le_bytes(), u64::from(task_idx).to_le_bytes()].concat())
}

struct World {
    config: SimConfig,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Option<Ev>>,
    free_events: Vec<usize>,
    core: Option<Core>,
    /// Bumped at every coordinator crash, so checks it had under way are lost.
    coord_incarnation: u64,
    /// The ledger beside the core; `None` while the coordinator is down.
    payments: Option<Payments>,
    durable: DurableModel,
    /// The ledger's journal as the store holds it: written with the core's
    /// changes of the same step, replayed on restart.
    journal: Vec<iog_ledger::Entry>,
    /// Every job pays from this wallet.
    payer: Address,
    /// Each job's price cap per task-hour and budget.
    job_terms: Vec<JobTerms>,
    /// Every job's cap per device-hour.
    job_price: Amount,
    /// Whose owner is using the machine, as the coordinator last heard.
    owner_pauses: OwnerPauses,
    /// Workers whose challenge round the coordinator started and has not
    /// heard the end of, in the current session.
    challenging: BTreeSet<WorkerId>,
    sessions: BTreeMap<WorkerId, (usize, u64)>,
    clock_offset_ms: i64,
    workers: Vec<SimWorker>,
    slots_by_id: BTreeMap<WorkerId, usize>,
    next_session: u64,
    next_identity: u64,
    jobs: Vec<JobId>,
    /// Attempts per task of each job, `None` for the coordinator's default.
    job_attempts: Vec<Option<u32>>,
    job_timeouts: Vec<Option<u64>>,
    /// Tasks of each job.
    job_tasks: Vec<u32>,
    /// How each job verifies its results.
    job_verify: Vec<Verify>,
    /// Each job's place in `jobs`.
    job_index: BTreeMap<JobId, usize>,
    /// The cheats' own random stream, so that their lies leave the other
    /// draws of a seed as they were.
    cheat_rng: ChaCha8Rng,
    /// The jobs that are gangs.
    gangs: BTreeSet<JobId>,
    /// The jobs that are chained, and the tasks a link of each holds.
    chained: BTreeMap<JobId, u32>,
    acked: BTreeSet<JobId>,
    lease_owner: BTreeMap<(TaskId, LeaseToken), WorkerId>,
    stats: Stats,
    hasher: DefaultHasher,
    trace: Vec<String>,
}

/// Runs one seed. A broken rule ends the run early and is reported in the outcome.
pub fn run(seed: u64, config: &SimConfig) -> Outcome {
    let mut world = World::new(seed, config.clone());
    // A panic in the core is a broken rule too, reported with its seed.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| world.run())).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(Violation::new("core", format!("panicked: {message}")))
    });
    let violation = result.err().map(|mut violation| {
        violation.step = world.stats.steps;
        violation.at_ms = world.now;
        violation
    });
    Outcome { violation, stats: world.stats, trace_hash: world.hasher.finish(), trace: world.trace }
}

fn roll(rng: &mut ChaCha8Rng, per_mille: u32) -> bool {
    per_mille > 0 && rng.random_range(0..1000) < per_mille
}

impl World {
    fn new(seed: u64, mut config: SimConfig) -> World {
        // Adaptive verification's draws are keyed by the coordinator's
        // secret; a seed's is its own.
        config.core.verify_key = seed ^ 0x6b65_7973;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Prices come from a stream of their own, so that they leave the
        // fault schedule of a seed as it was before workers had prices.
        let mut price_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7072_6963_6573);
        // Who cheats, and every lie they tell, come from a stream of their
        // own too.
        let mut cheat_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6368_6561_7473);
        let cheat_classes = config.cheats.draw(config.n_workers, &mut cheat_rng);
        let job_price = Amount::from_io(SIM_JOB_PRICE_IO).expect("small amount");
        let mut workers = Vec::new();
        let mut slots_by_id = BTreeMap::new();
        for idx in 0..config.n_workers {
            let id = WorkerId(format!("w{idx}"));
            let slow = roll(&mut rng, config.faults.slow_worker_per_mille);
            let zombie = roll(&mut rng, config.faults.zombie_per_mille);
            let cap = job_price.base_units();
            let price = Amount::from_base_units(price_rng.random_range(cap / 2..=cap));
            slots_by_id.insert(id.clone(), idx as usize);
            let mut worker = SimWorker::new(id, slow, zombie, price, cheat_classes[idx as usize]);
            // Every third honest worker's device computes in other
            // precision, so replicas disagree in bytes and the coordinator
            // compares them within tolerance.
            worker.elsewhere = worker.cheat.is_none() && idx % 3 == 1;
            workers.push(worker);
        }
        let jobs: Vec<JobId> = (0..config.n_jobs).map(|_| JobId(rng.random::<u64>().max(1))).collect();
        let job_attempts = (0..config.n_jobs)
            .map(|_| roll(&mut rng, config.faults.few_attempts_per_mille).then(|| rng.random_range(2..=4)))
            .collect();
        // Task timeouts come from a stream of their own, so adding them left
        // every other draw of a seed as it was.
        let mut timeout_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7469_6d65);
        let job_timeouts: Vec<Option<u64>> = (0..config.n_jobs)
            .map(|_| {
                roll(&mut timeout_rng, config.task_timeout_per_mille).then(|| timeout_rng.random_range(1_000..=3_000))
            })
            .collect();
        // Which jobs are gangs comes from a stream of its own too.
        let mut gang_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6761_6e67);
        let gang_size = config.tasks_per_job.min(config.n_workers / 2).min(config.gang_size_max).max(1);
        let is_gang: Vec<bool> = (0..config.n_jobs).map(|_| roll(&mut gang_rng, config.gang_per_mille)).collect();
        let job_tasks: Vec<u32> =
            is_gang.iter().map(|&gang| if gang { gang_size } else { config.tasks_per_job }).collect();
        let gangs: BTreeSet<JobId> =
            is_gang.iter().zip(&jobs).filter(|(gang, _)| **gang).map(|(_, job_id)| *job_id).collect();
        // Which jobs are chained, from a stream of its own.
        let mut chain_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6368_6169_6e73);
        // Half of them run links of several tasks (the smallest divisor of
        // its tasks up to 8, where one exists), from a stream of its own.
        let mut width_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0077_6964_7468);
        let chained: BTreeMap<JobId, u32> = is_gang
            .iter()
            .zip(&jobs)
            .zip(&job_tasks)
            .filter(|((gang, _), _)| !**gang && roll(&mut chain_rng, config.chained_per_mille))
            .map(|((_, job_id), &n_tasks)| {
                let wide = roll(&mut width_rng, 500);
                let width = (2..=8.min(n_tasks)).find(|w| n_tasks % w == 0).filter(|_| wide).unwrap_or(1);
                (*job_id, width)
            })
            .collect();
        // And so does each job's verification policy: every job draws one,
        // and gangs then verify nothing, as the core requires.
        let mut verify_rng = ChaCha8Rng::seed_from_u64(seed ^ 0x7665_7269_6679);
        let job_verify: Vec<Verify> = is_gang
            .iter()
            .map(|&gang| {
                let verify = config.verify.draw(&mut verify_rng);
                if gang { Verify::None } else { verify }
            })
            .collect();
        let core = Core::new(config.core.clone());
        // A task costs `task_ms` of run time at the price; a tight budget
        // covers about half the job, an ample one twice it.
        let payer = Address::from_public_key([7; 32]);
        // Each task uses one device, so its cap per hour is the cap per device-hour.
        let price_io_per_hour = job_price;
        let job_terms: Vec<JobTerms> = job_tasks
            .iter()
            .zip(&job_verify)
            .map(|(&n_tasks, &verify)| {
                let job_cost = price_io_per_hour
                    .checked_mul_div(config.task_ms * u64::from(n_tasks), iog_ledger::billing::MS_PER_HOUR)
                    .expect("small amount");
                let tight = roll(&mut rng, config.faults.tight_budget_per_mille);
                // An ample budget covers the runs that agreeing replicas
                // take, twice; a tight one half of the tasks run once.
                let ample_runs = 2 * budget_runs(verify);
                let budget =
                    if tight { job_cost.checked_mul_div(1, 2) } else { job_cost.checked_mul_div(ample_runs, 1) };
                JobTerms {
                    payer,
                    budget: budget.expect("small amount").max(Amount::from_base_units(1)),
                    price_io_per_hour,
                }
            })
            .collect();
        let mut ledger = Ledger::new();
        let funds = job_terms.iter().try_fold(Amount::ZERO, |sum, terms| sum.checked_add(terms.budget));
        let funds = funds.expect("small amounts").max(Amount::from_base_units(1));
        ledger
            .mint(TransferId::derive("sim funds"), AccountId::Wallet(payer), funds, "sim funds".into(), 0)
            .expect("a first mint is accepted");
        let journal = ledger.journal().entries().to_vec();
        let payments = Payments::new(ledger, SIM_FEE_BPS, &[]);
        let mut stats = Stats {
            tasks: job_tasks.iter().map(|&n| u64::from(n)).sum(),
            gang_jobs: gangs.len() as u64,
            wide_chain_jobs: chained.values().filter(|width| **width > 1).count() as u64,
            ..Stats::default()
        };
        for (&n_tasks, &verify) in job_tasks.iter().zip(&job_verify) {
            let policy = stats.verify.policy_mut(Policy::of(verify));
            policy.jobs += 1;
            policy.tasks += u64::from(n_tasks);
        }
        let job_index = jobs.iter().enumerate().map(|(idx, job_id)| (*job_id, idx)).collect();
        World {
            payments: Some(payments),
            journal,
            payer,
            job_terms,
            job_price,
            owner_pauses: OwnerPauses::default(),
            challenging: BTreeSet::new(),
            next_identity: u64::from(config.n_workers),
            config,
            rng,
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            events: Vec::new(),
            free_events: Vec::new(),
            core: Some(core),
            coord_incarnation: 0,
            durable: DurableModel::default(),
            sessions: BTreeMap::new(),
            clock_offset_ms: 0,
            workers,
            slots_by_id,
            next_session: 1,
            jobs,
            job_attempts,
            job_timeouts,
            job_tasks,
            job_verify,
            job_index,
            cheat_rng,
            gangs,
            chained,
            acked: BTreeSet::new(),
            lease_owner: BTreeMap::new(),
            stats,
            hasher: DefaultHasher::new(),
            trace: Vec::new(),
        }
    }

    fn at(&mut self, delay_ms: u64, ev: Ev) {
        let idx = match self.free_events.pop() {
            Some(idx) => {
                self.events[idx] = Some(ev);
                idx
            }
            None => {
                self.events.push(Some(ev));
                self.events.len() - 1
            }
        };
        self.seq += 1;
        self.queue.push(Reverse((self.now + delay_ms, self.seq, idx)));
    }

    fn in_fault_window(&self) -> bool {
        self.now < self.config.fault_window_ms
    }

    fn coord_now(&self) -> u64 {
        (self.now as i64 + self.clock_offset_ms).max(0) as u64
    }

    fn run(&mut self) -> Result<(), Violation> {
        for slot in 0..self.workers.len() {
            let delay = self.rng.random_range(0..200);
            self.at(delay, Ev::Reconnect { slot, incarnation: 0 });
        }
        for job_idx in 0..self.config.n_jobs {
            let delay = self.rng.random_range(0..self.config.fault_window_ms / 2 + 1);
            self.at(delay, Ev::Submit { job_idx });
            if roll(&mut self.rng, self.config.faults.cancel_per_mille) {
                let later = self.rng.random_range(delay..self.config.fault_window_ms + 1);
                self.at(later, Ev::Cancel { job_idx });
            }
        }
        self.at(0, Ev::CoordTick);
        self.at(self.config.chaos_interval_ms, Ev::Chaos);
        let deadline = self.config.fault_window_ms + self.config.liveness_bound_ms;
        while let Some(Reverse((time, _, idx))) = self.queue.pop() {
            let ev = self.events[idx].take().expect("queued events exist");
            self.free_events.push(idx);
            self.now = time;
            if self.now > deadline {
                return Err(self.liveness_violation());
            }
            self.stats.steps += 1;
            self.step(ev)?;
            if self.config.core_check_every > 0
                && self.stats.steps.is_multiple_of(self.config.core_check_every)
                && let Some(core) = &self.core
            {
                core.check_invariants().map_err(|broken| Violation::new("core", broken))?;
                if let Some(payments) = &self.payments {
                    payments.check().map_err(|broken| Violation::new("money", broken))?;
                }
            }
            if self.all_final() {
                self.stats.end_ms = self.now;
                return self.final_checks();
            }
        }
        Err(self.liveness_violation())
    }

    fn all_final(&self) -> bool {
        self.acked.len() == self.jobs.len()
            && self.jobs.iter().all(|job_id| self.durable.job_state(*job_id).is_some_and(JobState::is_final))
    }

    fn liveness_violation(&self) -> Violation {
        let open: Vec<String> = self
            .jobs
            .iter()
            .filter(|job_id| !self.durable.job_state(**job_id).is_some_and(JobState::is_final))
            .map(|job_id| {
                // What the coordinator says the job waits for, if it is up.
                let why = self.core.as_ref().and_then(|core| core.waiting_reason(*job_id));
                let gang = if self.gangs.contains(job_id) { ", a gang" } else { "" };
                match why {
                    Some(why) => format!("{job_id} ({:?}{gang}: {why})", self.durable.job_state(*job_id)),
                    None => format!("{job_id} ({:?}{gang})", self.durable.job_state(*job_id)),
                }
            })
            .collect();
        Violation::new(
            "liveness",
            format!("after faults stopped at {} ms, jobs still open: {}", self.config.fault_window_ms, open.join(", ")),
        )
    }

    fn final_checks(&mut self) -> Result<(), Violation> {
        for (job_id, n_tasks) in self.jobs.clone().into_iter().zip(self.job_tasks.clone()) {
            match self.durable.job_state(job_id) {
                Some(JobState::Done) => {
                    self.stats.jobs_done += 1;
                    self.stats.gang_jobs_done += u64::from(self.gangs.contains(&job_id));
                    self.stats.wide_chain_jobs_done += u64::from(self.chained.get(&job_id).is_some_and(|w| *w > 1));
                    // Whether an accepted output is right was checked when
                    // the core accepted it.
                    for task_idx in 0..n_tasks {
                        let task_id = TaskId::new(job_id, task_idx);
                        if self.durable.verified_output(task_id).is_none() {
                            return Err(Violation::new(
                                "commit-once",
                                format!("{task_id} of a done job has no result"),
                            ));
                        }
                    }
                }
                Some(JobState::Cancelled) => self.stats.jobs_cancelled += 1,
                Some(_) => self.stats.jobs_failed += 1,
                None => return Err(Violation::new("acked-durable", format!("{job_id} vanished"))),
            }
        }
        self.stats.commits = self.durable.n_commits() as u64;
        self.stats.results_accepted = self
            .jobs
            .iter()
            .flat_map(|job_id| self.durable.commits_of(*job_id))
            .filter(|(_, commit)| commit.verdict == Some(true))
            .count() as u64;
        self.stats.tasks_paid = self
            .journal
            .iter()
            .filter(|entry| entry.rejected.is_none() && matches!(entry.op, iog_ledger::Op::Post { .. }))
            .count() as u64;
        self.check_money()
    }

    /// Money at the end: the ledger's own rules, every escrow resolved, and
    /// every committed task of every job paid exactly once, to its worker.
    fn check_money(&self) -> Result<(), Violation> {
        let ledger = Ledger::replay(&self.journal).map_err(|err| Violation::new("money", format!("replay: {err}")))?;
        let payments = self.payments.as_ref().expect("the coordinator is up at the end");
        if payments.ledger() != &ledger {
            return Err(Violation::new("money", "the ledger in memory differs from its durable journal"));
        }
        payments.check().map_err(|broken| Violation::new("money", broken))?;
        for (job_idx, (job_id, terms)) in self.jobs.iter().zip(&self.job_terms).enumerate() {
            let hold_id = iog_ledger::billing::escrow_hold_id(&self.payer, &format!("sim-{job_idx}"));
            let commits: Vec<_> = self
                .durable
                .commits_of(*job_id)
                .map(|(task_id, commit)| iog_ledger::billing::CommittedTask {
                    task_idx: task_id.task_idx,
                    accepted: commit.verdict == Some(true),
                    worker_id: &commit.worker_id.0,
                    duration_ms: commit.duration_ms,
                    price_io_per_hour: commit.price_io_per_hour,
                })
                .collect();
            iog_ledger::billing::check_job_payments(&ledger, job_id.0, hold_id, terms.price_io_per_hour, &commits)
                .map_err(|broken| Violation::new("paid-once", broken))?;
            let hold = ledger.pending_transfer(&hold_id).expect("checked above");
            if hold.state == iog_ledger::PendingState::Open {
                return Err(Violation::new("money", format!("escrow of final job {job_id} is still open")));
            }
        }
        let payer = ledger.balance(&AccountId::Wallet(self.payer)).available.0;
        let fees = ledger.balance(&AccountId::Fees).posted.0;
        let earned: i128 = ledger
            .accounts()
            .filter(|(account, _)| matches!(account, AccountId::Payout(_)))
            .map(|(_, balance)| balance.posted.0)
            .sum();
        if payer + fees + earned != i128::from(ledger.supply().base_units()) {
            return Err(Violation::new("money", "payer, workers and fees do not add up to the supply"));
        }
        Ok(())
    }

    fn record(&mut self, kind: u8, detail: impl FnOnce() -> String) {
        (self.now, kind).hash(&mut self.hasher);
        if self.config.trace {
            let line = format!("{:>8} ms  {}", self.now, detail());
            self.trace.push(line);
        }
    }

    fn step(&mut self, ev: Ev) -> Result<(), Violation> {
        match ev {
            Ev::ToCoord { slot, session, msg } => self.coord_receive(slot, session, msg),
            Ev::ToWorker { slot, incarnation, session, msg } => self.worker_receive(slot, incarnation, session, msg),
            Ev::Submit { job_idx } => self.submit(job_idx),
            Ev::Cancel { job_idx } => {
                let job_id = self.jobs[job_idx as usize];
                if self.core.is_none() || !self.acked.contains(&job_id) {
                    // Like a person, the submitter tries again a little later.
                    self.at(300, Ev::Cancel { job_idx });
                    return Ok(());
                }
                self.record(14, || format!("cancel {job_id}"));
                self.coord_step(Event::CancelJob { job_id })
            }
            Ev::CoordTick => {
                let interval = self.config.core.heartbeat_interval_ms.div_ceil(4).max(1);
                if self.core.is_some() {
                    self.record(1, || "coordinator tick".into());
                    self.coord_step(Event::Tick)?;
                    self.at(interval, Ev::CoordTick);
                }
                Ok(())
            }
            Ev::CoordRestart => self.coord_restart(),
            Ev::SpotChecked { task_id, passed, coordinator } => {
                if self.core.is_none() || coordinator != self.coord_incarnation {
                    return Ok(());
                }
                let detail = if passed { String::new() } else { "a sample differs".to_owned() };
                self.coord_step(Event::SpotChecked { task_id, passed, detail })
            }
            Ev::ChainInputReady { job_id, task_idx, inputs, coordinator } => {
                if self.core.is_none() || coordinator != self.coord_incarnation {
                    return Ok(());
                }
                self.coord_step(Event::ChainInputReady { job_id, task_idx, inputs })
            }
            Ev::OutputsCompared { task_id, outputs, classes, coordinator } => {
                if self.core.is_none() || coordinator != self.coord_incarnation {
                    return Ok(());
                }
                self.coord_step(Event::OutputsCompared { task_id, outputs, classes })
            }
            Ev::Heartbeat { slot, incarnation } => {
                let worker = &self.workers[slot];
                if worker.up && worker.incarnation == incarnation {
                    if worker.session != 0 {
                        let session = worker.session;
                        let held = worker.held();
                        // Results not yet acknowledged go again, as the agent does.
                        let unacked: Vec<Up> = worker
                            .unacked
                            .iter()
                            .map(|(task_id, (token, output))| Up::Done {
                                task_id: *task_id,
                                token: *token,
                                output: *output,
                            })
                            .collect();
                        self.send_up(slot, session, Up::Heartbeat { held });
                        for message in unacked {
                            self.send_up(slot, session, message);
                        }
                    }
                    self.at(self.config.core.heartbeat_interval_ms, Ev::Heartbeat { slot, incarnation });
                }
                Ok(())
            }
            Ev::TaskDone { slot, incarnation, task_id, token, input } => {
                self.task_done(slot, incarnation, task_id, token, input);
                Ok(())
            }
            Ev::WorkerRestart { slot } => {
                let worker = &mut self.workers[slot];
                worker.up = true;
                let incarnation = worker.incarnation;
                self.record(2, || format!("worker {slot} restarts"));
                self.at(0, Ev::Reconnect { slot, incarnation });
                Ok(())
            }
            Ev::Reconnect { slot, incarnation } => {
                self.reconnect(slot, incarnation);
                Ok(())
            }
            Ev::ChallengeAnswered { slot, incarnation, session, round, passed } => {
                let worker = &self.workers[slot];
                if worker.up && worker.incarnation == incarnation && worker.session == session {
                    self.send_up(slot, session, Up::Challenged { round, passed });
                }
                Ok(())
            }
            Ev::OwnerIdle { slot } => {
                let worker = &mut self.workers[slot];
                worker.owner_busy = false;
                let session = if worker.up { worker.session } else { 0 };
                self.record(16, || format!("the owner of worker {slot} is done with it"));
                // A worker that is down or not connected starts its next
                // session unpaused; there is nothing to tell.
                if session != 0 {
                    self.send_up(slot, session, Up::Resume);
                }
                Ok(())
            }
            Ev::Chaos => {
                self.chaos()?;
                if self.in_fault_window() {
                    self.at(self.config.chaos_interval_ms, Ev::Chaos);
                }
                Ok(())
            }
        }
    }

    fn submit(&mut self, job_idx: u32) -> Result<(), Violation> {
        let job_id = self.jobs[job_idx as usize];
        if self.acked.contains(&job_id) {
            return Ok(());
        }
        if self.core.is_none() {
            // The client retries until the coordinator answers.
            self.at(200, Ev::Submit { job_idx });
            return Ok(());
        }
        let gang = if self.gangs.contains(&job_id) { " (a gang)" } else { "" };
        self.record(3, || format!("submit {job_id}{gang}"));
        let chain = self.chained.contains_key(&job_id).then_some(self.job_tasks[job_idx as usize]);
        let n_planned = self.chained.get(&job_id).copied().unwrap_or(self.job_tasks[job_idx as usize]);
        let inputs = (0..n_planned).map(|idx| task_input(job_id, idx)).collect();
        let gang_latency_ms_max = self.gangs.contains(&job_id).then_some(SIM_GANG_LATENCY_MS_MAX);
        let job = NewJob {
            chain,
            job_id,
            name: format!("sim-{job_idx}"),
            workload: "sim".into(),
            spec_json: Vec::new(),
            max_attempts: self.job_attempts[job_idx as usize],
            task_timeout_ms: self.job_timeouts[job_idx as usize],
            inputs,
            requirements: Requirements {
                kind: Some(DeviceKind::Cpu),
                price_io_per_device_hour_max: Some(self.job_price),
                gang_latency_ms_max,
                ..Requirements::default()
            },
            // Every job pays from the one sim wallet; the submitter is only
            // the name fair share is kept by.
            submitter: SUBMITTERS[job_idx as usize % SUBMITTERS.len()].to_owned(),
            verify: self.job_verify[job_idx as usize],
            sealed: false,
            assets: Vec::new(),
        };
        let escrow = (job_id, format!("sim-{job_idx}"), self.job_terms[job_idx as usize]);
        self.coord_batch(Some(escrow), Event::JobSubmitted(job))?;
        if !self.acked.contains(&job_id) {
            self.at(200, Ev::Submit { job_idx });
        }
        Ok(())
    }

    /// The coordinator shell: decide, write, then act — as the engine does.
    fn coord_step(&mut self, event: Event) -> Result<(), Violation> {
        self.coord_batch(None, event)
    }

    /// One engine step: the escrow of a paid submission first, then the
    /// event; payments follow the core's actions and may answer with events
    /// of their own; then the core's changes and the journal entries are
    /// written together, and only then does anything go out.
    fn coord_batch(&mut self, escrow: Option<(JobId, String, JobTerms)>, event: Event) -> Result<(), Violation> {
        let now = self.coord_now();
        // The only event that may yield leases: their worker's owner came back.
        let pausing = match &event {
            Event::WorkerPaused { worker_id, paused: true, .. } => Some(worker_id.clone()),
            _ => None,
        };
        let (Some(core), Some(payments)) = (self.core.as_mut(), self.payments.as_mut()) else { return Ok(()) };
        let journal_before = payments.ledger().journal().len();
        if let Some((job_id, request_id, terms)) = escrow
            && let Err(err) = payments.hold_escrow(job_id, &request_id, &terms, now)
        {
            return match err {
                // The first try was written; the submitter learns it now.
                iog_core::EscrowError::RequestReused { .. } if self.durable.has_job(job_id) => {
                    self.acked.insert(job_id);
                    Ok(())
                }
                err => Err(Violation::new("money", format!("escrow of {job_id} refused: {err}"))),
            };
        }
        let mut actions = Vec::new();
        let mut events = vec![(event, false)];
        // Jobs this step fails because their escrow is spent (a spent
        // escrow's event is ignored when the same commit finished the job).
        let mut escrows_spent = 0;
        while let Some((event, spent)) = events.pop() {
            let out = core.handle(event, now);
            if spent && out.iter().any(|action| matches!(action, Action::Persist(Change::JobEnded { .. }))) {
                escrows_spent += 1;
            }
            for action in &out {
                if let Some(follow) = payments.settle(action, now) {
                    events.push((follow, true));
                }
            }
            actions.extend(out);
        }
        let new_entries = payments.ledger().journal().entries()[journal_before..].to_vec();
        if self.in_fault_window() && roll(&mut self.rng, self.config.faults.crash_before_persist_per_mille) {
            self.stats.crashes_before_persist += 1;
            self.crash_coordinator();
            return Ok(());
        }
        self.stats.escrows_spent += escrows_spent;
        let changes: Vec<Change> = actions
            .iter()
            .filter_map(|action| match action {
                Action::Persist(change) => Some(change.clone()),
                _ => None,
            })
            .collect();
        self.check_leases_and_yields(&changes, pausing.as_ref())?;
        self.check_verification(&changes, &actions)?;
        self.durable.apply(&changes)?;
        if !changes.is_empty() {
            self.check_gangs()?;
        }
        self.journal.extend(new_entries);
        if self.config.trace {
            for action in &actions {
                if !matches!(action, Action::Persist(Change::TaskCommitted { .. })) {
                    self.record(13, || format!("  -> {action:?}"));
                }
            }
        }
        for action in actions {
            self.perform(action)?;
        }
        Ok(())
    }

    /// Checks one step's changes before they are written: each new lease
    /// goes to a worker whose owner is not using it, at that worker's
    /// asking price and within the job's cap; each yield hands back a lease
    /// of the worker whose owner just came back, or a lease of a gang
    /// member after another member's lease ended without a commit earlier
    /// in the same step (requeued, or yielded to its owner).
    fn check_leases_and_yields(&mut self, changes: &[Change], pausing: Option<&WorkerId>) -> Result<(), Violation> {
        // Gangs one of whose members stopped in this step, and those of
        // them whose other members were stopped too.
        let mut stopped: BTreeSet<JobId> = BTreeSet::new();
        let mut restarted: BTreeSet<JobId> = BTreeSet::new();
        for change in changes {
            match change {
                Change::TaskLeased { task_id, worker_id, price_io_per_hour, .. } => {
                    self.owner_pauses.check_lease(worker_id, *task_id)?;
                    if self.challenging.contains(worker_id) {
                        return Err(Violation::new(
                            "challenge-idle",
                            format!("{task_id} leased to {worker_id} while its challenge round runs"),
                        ));
                    }
                    let asked =
                        self.slots_by_id.get(worker_id).map(|slot| self.workers[*slot].price_io_per_device_hour);
                    // One device per task: the lease pays the ask once.
                    if asked != Some(*price_io_per_hour) || *price_io_per_hour > self.job_price {
                        return Err(Violation::new(
                            "price",
                            format!(
                                "{task_id} leased to {worker_id} at {price_io_per_hour} per hour; it asks {asked:?}, \
                                 the job's cap is {}",
                                self.job_price
                            ),
                        ));
                    }
                }
                Change::TaskRequeued { task_id, error, .. } => {
                    if error.contains("task_timeout_ms") {
                        self.stats.task_timeouts += 1;
                    }
                    stopped.insert(task_id.job_id);
                }
                Change::TaskYielded { task_id, .. } => {
                    let holder = self.durable.lease(*task_id).map(|(holder, _)| holder);
                    if pausing.is_some() && holder.as_ref() == pausing {
                        self.stats.tasks_yielded += 1;
                        stopped.insert(task_id.job_id);
                    } else if self.gangs.contains(&task_id.job_id) && stopped.contains(&task_id.job_id) {
                        self.stats.gang_yields += 1;
                        restarted.insert(task_id.job_id);
                    } else {
                        return Err(Violation::new(
                            "yield",
                            format!(
                                "{task_id} of {holder:?} yielded on a step where {pausing:?} paused and no other \
                                 member of its gang stopped"
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }
        self.stats.gang_restarts += restarted.len() as u64;
        Ok(())
    }

    /// Checks one step's commits and verdicts before they are written, and
    /// counts them: an honest worker's commit is the right output for its
    /// input; each verdict keeps the rules of [`Verdict::check`]; and the
    /// step slashes, for wrong results, exactly the workers its verdicts
    /// judged wrong.
    fn check_verification(&mut self, changes: &[Change], actions: &[Action]) -> Result<(), Violation> {
        // Streaks as this step's earlier changes left them, over the store's.
        let mut streaks: BTreeMap<&WorkerId, u64> = BTreeMap::new();
        let mut judged_wrong: Vec<&WorkerId> = Vec::new();
        for change in changes {
            match change {
                Change::WorkerRecorded { worker_id, record } => {
                    streaks.insert(worker_id, record.reputation.valid_streak);
                }
                Change::TaskCommitted { task_id, worker_id, output, .. } => {
                    self.count_commit(*task_id, worker_id, *output)?;
                }
                Change::TaskVerified { task_id, output, valid, wrong } => {
                    let first = valid.first().map(|result| &result.worker_id);
                    let first_streak = first.map_or(0, |worker_id| {
                        streaks.get(worker_id).copied().unwrap_or_else(|| self.durable.valid_streak(worker_id))
                    });
                    // Outputs are judged by the result they stand for: the
                    // right one in either precision is one result.
                    let input = self.input_of(*task_id);
                    let output = agreement_class(input, *output);
                    let verdict = Verdict {
                        task_id: *task_id,
                        verify: self.verify_of(task_id.job_id),
                        right: right_output(input),
                        output,
                        valid: valid.iter().map(|r| self.judged(&r.worker_id, output)).collect(),
                        wrong: wrong
                            .iter()
                            .map(|r| self.judged(&r.worker_id, agreement_class(input, r.output)))
                            .collect(),
                        first_streak,
                    };
                    verdict.check(&mut self.stats.verify)?;
                    self.stats.tasks_settled += 1;
                    judged_wrong.extend(wrong.iter().map(|result| &result.worker_id));
                }
                Change::ResultRejected { task_id, worker_id, output, .. } => {
                    // The simulated spot check is exact: it rejects a run
                    // exactly when its output is wrong.
                    let class = self.class_of(worker_id);
                    if is_right(self.input_of(*task_id), *output) || class.is_none() {
                        return Err(Violation::new(
                            "honest-never-slashed",
                            format!("{task_id}: the result of {worker_id} ({class:?}) rejected by its spot check"),
                        ));
                    }
                    let verify = self.stats.verify.policy_mut(Policy::Spot);
                    verify.settled_runs += 1;
                    if let Some(class) = class {
                        self.stats.verify.wrong_mut(Policy::Spot, class).caught += 1;
                    }
                    judged_wrong.push(worker_id);
                }
                Change::JobEnded { job_id, state: JobState::Failed, reason: Some(reason), .. }
                    if reason.contains(NO_QUORUM_REASON) || reason.contains(NO_SPOT_PASS_REASON) =>
                {
                    self.stats.verify.policy_mut(Policy::of(self.verify_of(*job_id))).no_quorum += 1;
                }
                _ => {}
            }
        }
        let mut slashed: Vec<&WorkerId> = actions
            .iter()
            .filter_map(|action| match action {
                Action::SlashStake { worker_id, reason_key, .. } if reason_key.starts_with(WRONG_RESULT_REASON) => {
                    Some(worker_id)
                }
                _ => None,
            })
            .collect();
        slashed.sort_unstable();
        judged_wrong.sort_unstable();
        if slashed != judged_wrong {
            return Err(Violation::new(
                "honest-never-slashed",
                format!("slashed for wrong results: {slashed:?}; judged wrong: {judged_wrong:?}"),
            ));
        }
        Ok(())
    }

    /// Counts a commit, and checks that an honest worker's is right.
    fn count_commit(&mut self, task_id: TaskId, worker_id: &WorkerId, output: BlobId) -> Result<(), Violation> {
        let policy = Policy::of(self.verify_of(task_id.job_id));
        self.stats.verify.policy_mut(policy).commits += 1;
        if is_right(self.input_of(task_id), output) {
            return Ok(());
        }
        match self.class_of(worker_id) {
            Some(class) => {
                self.stats.verify.wrong_mut(policy, class).committed += 1;
                Ok(())
            }
            None => Err(Violation::new(
                "result-stable",
                format!("{task_id} committed by honest {worker_id} is not the right output for its input"),
            )),
        }
    }

    /// A judged result as the verdict rules see it.
    fn judged<'a>(&self, worker_id: &'a WorkerId, output: BlobId) -> Judged<'a> {
        Judged { worker_id, class: self.class_of(worker_id), output }
    }

    /// The cheat class of the machine behind a worker id, `None` for an
    /// honest one (ids of every life of a machine map to its slot).
    fn class_of(&self, worker_id: &WorkerId) -> Option<CheatClass> {
        self.slots_by_id.get(worker_id).and_then(|slot| self.workers[*slot].cheat_class())
    }

    fn verify_of(&self, job_id: JobId) -> Verify {
        self.job_index.get(&job_id).map_or(Verify::None, |idx| self.job_verify[*idx])
    }

    /// The input a task or replica runs: its task's in the job's plan.
    fn input_of(&self, task_id: TaskId) -> BlobId {
        let idx = *self.job_index.get(&task_id.job_id).expect("the core knows only the simulator's jobs");
        let (task_idx, _) = replica_of(self.job_tasks[idx], task_id.task_idx);
        if self.chained.get(&task_id.job_id).is_some_and(|width| task_idx >= *width) {
            // Made from the link before's results, as stored.
            let made = self.durable.input(TaskId::new(task_id.job_id, task_idx));
            return made.expect("a chained task is asked about once it is made");
        }
        task_input(task_id.job_id, task_idx)
    }

    /// After a write: every running gang job has none or all of its
    /// unfinished tasks leased in the store, on distinct workers.
    fn check_gangs(&self) -> Result<(), Violation> {
        for job_id in &self.gangs {
            if self.durable.job_state(*job_id) == Some(JobState::Running) {
                crate::invariants::check_gang(*job_id, self.durable.tasks_of(*job_id))?;
            }
        }
        Ok(())
    }

    fn perform(&mut self, action: Action) -> Result<(), Violation> {
        match action {
            Action::Persist(_) | Action::JobFinished { .. } => {}
            Action::Assign { worker_id, task_id, token, input } => {
                // Every replica runs its task's input.
                if input != self.input_of(task_id) {
                    return Err(Violation::new(
                        "replicas",
                        format!("{task_id} assigned to {worker_id} with another input"),
                    ));
                }
                self.send_down(&worker_id, Down::Assign { task_id, token, input });
            }
            Action::Revoke { worker_id, task_id, token, .. } => {
                self.send_down(&worker_id, Down::Revoke { task_id, token });
            }
            Action::ResultReply { worker_id, task_id, token, outcome } => {
                if outcome == iog_core::CommitOutcome::Stale {
                    self.stats.stale_results += 1;
                }
                self.send_down(&worker_id, Down::Ack { task_id, token });
            }
            Action::SpotCheck { task_id, input, output, seed: _ } => {
                // The coordinator checks on its own machine: a few
                // milliseconds later, unless it crashes first (a restart
                // asks again).
                if input != self.input_of(task_id) {
                    return Err(Violation::new("replicas", format!("{task_id} spot-checked against another input")));
                }
                let passed = is_right(input, output);
                let delay = self.rng.random_range(1..20);
                self.at(delay, Ev::SpotChecked { task_id, passed, coordinator: self.coord_incarnation });
            }
            Action::ChainInput { job_id, task_idx, previous } => {
                // The coordinator makes the next link's inputs from the link
                // before's inputs and accepted outputs, as stored.
                let width = self.chained.get(&job_id).copied().unwrap_or(0);
                let first = task_idx.wrapping_sub(width);
                let stored: Vec<(Option<BlobId>, Option<BlobId>)> = (first..task_idx)
                    .map(|idx| {
                        let before = TaskId::new(job_id, idx);
                        (self.durable.input(before), self.durable.verified_output(before))
                    })
                    .collect();
                let asked: Vec<(Option<BlobId>, Option<BlobId>)> =
                    previous.iter().map(|(input, output)| (Some(*input), Some(*output))).collect();
                if width == 0 || stored != asked {
                    return Err(Violation::new(
                        "chain-in-order",
                        format!(
                            "{job_id}'s tasks from {task_idx} on asked for from {previous:?}; the store has {stored:?}"
                        ),
                    ));
                }
                let outputs: Vec<BlobId> = previous.iter().map(|(_, output)| *output).collect();
                let inputs = (0..width).map(|position| chain_next(&outputs, position)).collect();
                let delay = self.rng.random_range(1..20);
                let coordinator = self.coord_incarnation;
                self.at(delay, Ev::ChainInputReady { job_id, task_idx, inputs, coordinator });
            }
            Action::CompareOutputs { task_id, input, outputs } => {
                // Simulated outputs agree when they are the same bytes, or
                // both the right result (one computed in other precision).
                if input != self.input_of(task_id) {
                    return Err(Violation::new("replicas", format!("{task_id} compared against another input")));
                }
                let key = |output: &BlobId| agreement_class(input, *output);
                let classes = (0..outputs.len())
                    .map(|r| outputs.iter().position(|o| key(o) == key(&outputs[r])).unwrap_or(r) as u8)
                    .collect();
                let delay = self.rng.random_range(1..20);
                let coordinator = self.coord_incarnation;
                self.at(delay, Ev::OutputsCompared { task_id, outputs, classes, coordinator });
            }
            Action::Challenge { worker_id, round } => {
                self.challenging.insert(worker_id.clone());
                self.send_down(&worker_id, Down::Challenge { round });
            }
            // The simulated workers hold no stake; the slashes for wrong
            // results were checked with the step's verdicts.
            Action::SlashStake { .. } => {}
            Action::WorkerDead { worker_id } => {
                self.send_down(&worker_id, Down::Closed);
                self.sessions.remove(&worker_id);
                self.owner_pauses.forget(&worker_id);
                self.challenging.remove(&worker_id);
            }
            Action::JobAccepted { job_id } => {
                self.acked.insert(job_id);
            }
            Action::JobRejected { job_id, reason } => {
                // A retried submission whose first attempt was written.
                if self.durable.has_job(job_id) {
                    self.acked.insert(job_id);
                } else {
                    return Err(Violation::new("acked-durable", format!("{job_id} rejected: {reason}")));
                }
            }
        }
        Ok(())
    }

    fn crash_coordinator(&mut self) {
        self.record(4, || "coordinator crashes".into());
        self.coord_incarnation += 1;
        self.stats.coordinator_crashes += 1;
        self.core = None;
        self.payments = None;
        self.sessions.clear();
        self.owner_pauses.clear();
        self.challenging.clear();
        let delay = self.rng.random_range(50..3_000);
        self.at(delay, Ev::CoordRestart);
    }

    fn coord_restart(&mut self) -> Result<(), Violation> {
        if self.core.is_some() {
            return Ok(());
        }
        self.record(5, || "coordinator restarts from its store".into());
        for job_id in &self.acked {
            if !self.durable.has_job(*job_id) {
                return Err(Violation::new("acked-durable", format!("acknowledged {job_id} lost in a crash")));
            }
        }
        let core = Core::restore(self.config.core.clone(), self.durable.snapshot(), self.coord_now())
            .map_err(|err| Violation::new("store-consistent", err.to_string()))?;
        let ledger = Ledger::replay(&self.journal).map_err(|err| Violation::new("money", format!("replay: {err}")))?;
        let running: Vec<(JobId, Amount)> = self
            .jobs
            .iter()
            .zip(&self.job_terms)
            .filter(|(job_id, _)| self.durable.job_state(**job_id) == Some(JobState::Running))
            .map(|(job_id, terms)| (*job_id, terms.price_io_per_hour))
            .collect();
        self.payments = Some(Payments::new(ledger, SIM_FEE_BPS, &running));
        self.core = Some(core);
        self.at(0, Ev::CoordTick);
        Ok(())
    }

    /// Network: a message from worker `slot` to the coordinator.
    fn send_up(&mut self, slot: usize, session: u64, msg: Up) {
        let blocked = self.workers[slot].blocked(true, self.now) && self.in_fault_window();
        self.transmit(blocked, Ev::ToCoord { slot, session, msg });
    }

    /// Network: a message from the coordinator to a worker's open session.
    fn send_down(&mut self, worker_id: &WorkerId, msg: Down) {
        let Some(&(slot, session)) = self.sessions.get(worker_id) else { return };
        let incarnation = self.workers[slot].incarnation;
        let blocked = self.workers[slot].blocked(false, self.now) && self.in_fault_window();
        self.transmit(blocked, Ev::ToWorker { slot, incarnation, session, msg });
    }

    fn transmit(&mut self, blocked: bool, ev: Ev) {
        self.stats.messages += 1;
        let faults = self.in_fault_window();
        if blocked || (faults && roll(&mut self.rng, self.config.faults.drop_per_mille)) {
            self.stats.dropped += 1;
            return;
        }
        let jitter = if faults { self.rng.random_range(0..=self.config.faults.delay_max_ms) } else { 0 };
        if faults && roll(&mut self.rng, self.config.faults.duplicate_per_mille) {
            self.stats.duplicated += 1;
            let again = self.rng.random_range(0..=self.config.faults.delay_max_ms);
            self.at(1 + again, ev.clone());
        }
        self.at(1 + jitter, ev);
    }

    fn coord_receive(&mut self, slot: usize, session: u64, msg: Up) -> Result<(), Violation> {
        let worker_id = self.workers[slot].id.clone();
        if self.core.is_none() {
            // Connection refused: the worker learns its session is gone.
            self.bounce(slot, session);
            return Ok(());
        }
        if let Up::Hello { held, offer } = msg {
            self.record(6, || format!("coordinator: hello from worker {slot} session {session}"));
            self.sessions.insert(worker_id.clone(), (slot, session));
            // A new session starts unpaused; a busy owner's worker says so next.
            self.owner_pauses.forget(&worker_id);
            // An earlier session's round ended with it; the core starts a new one.
            self.challenging.remove(&worker_id);
            return self.coord_step(Event::WorkerConnected { worker_id, offer, trust: 0, running: held });
        }
        if self.sessions.get(&worker_id) != Some(&(slot, session)) {
            self.bounce(slot, session);
            return Ok(());
        }
        let event = match msg {
            Up::Hello { .. } => unreachable!("handled above"),
            Up::Heartbeat { held } => Event::Heartbeat { worker_id, held },
            Up::Done { task_id, token, output } => Event::TaskSucceeded {
                worker_id,
                task_id,
                token,
                output,
                duration_ms: self.config.task_ms,
                device: "cpu0".into(),
            },
            Up::Failed { task_id, token } => Event::TaskFailed { worker_id, task_id, token, error: "sim".into() },
            Up::Pause => Event::WorkerPaused { worker_id, paused: true, reason: "sim owner".into() },
            Up::Challenged { round, passed } => {
                self.challenging.remove(&worker_id);
                self.stats.challenges += 1;
                self.stats.challenges_failed += u64::from(!passed);
                Event::ChallengeChecked { worker_id, round, passed, detail: "sim".into() }
            }
            Up::Resume => Event::WorkerPaused { worker_id, paused: false, reason: String::new() },
        };
        self.record(7, || format!("coordinator: {event:?}"));
        let paused = match &event {
            Event::WorkerPaused { worker_id, paused, .. } => {
                // What the coordinator hears includes the message it reads now.
                self.owner_pauses.heard(worker_id, *paused);
                Some((worker_id.clone(), *paused))
            }
            _ => None,
        };
        self.coord_step(event)?;
        // Once a pause is handled (and written), the worker holds nothing.
        if let Some((worker_id, true)) = paused
            && self.owner_pauses.is_paused(&worker_id)
        {
            OwnerPauses::check_paused_holds_nothing(&worker_id, &self.durable.leases_held_by(&worker_id))?;
        }
        Ok(())
    }

    /// Tells a worker that its session is dead (a reset connection).
    fn bounce(&mut self, slot: usize, session: u64) {
        let incarnation = self.workers[slot].incarnation;
        let blocked = self.workers[slot].blocked(false, self.now) && self.in_fault_window();
        self.transmit(blocked, Ev::ToWorker { slot, incarnation, session, msg: Down::Closed });
    }

    fn reconnect(&mut self, slot: usize, incarnation: u64) {
        let worker = &mut self.workers[slot];
        if !worker.up || worker.incarnation != incarnation || worker.session != 0 {
            return;
        }
        let session = self.next_session;
        self.next_session += 1;
        worker.session = session;
        let held = worker.held();
        let unacked: Vec<Up> = worker
            .unacked
            .iter()
            .map(|(task_id, (token, output))| Up::Done { task_id: *task_id, token: *token, output: *output })
            .collect();
        let offer =
            Offer { price_io_per_device_hour: worker.price_io_per_device_hour, ..Offer::cpu(self.config.slots) };
        let owner_busy = worker.owner_busy;
        self.record(8, || {
            let busy = if owner_busy { " (its owner is using it: it pauses at once)" } else { "" };
            format!("worker {slot} connects, session {session}{busy}")
        });
        self.send_up(slot, session, Up::Hello { held, offer });
        for message in unacked {
            self.send_up(slot, session, message);
        }
        if owner_busy {
            // A new session starts unpaused on the coordinator's side, so a
            // worker whose owner is still busy says so right after its hello,
            // as the agent does.
            self.send_up(slot, session, Up::Pause);
        }
        self.at(self.config.core.heartbeat_interval_ms, Ev::Heartbeat { slot, incarnation });
    }

    fn worker_receive(&mut self, slot: usize, incarnation: u64, session: u64, msg: Down) -> Result<(), Violation> {
        let task_ms = self.config.task_ms;
        let worker = &self.workers[slot];
        if !worker.up || worker.incarnation != incarnation || worker.session != session {
            return Ok(());
        }
        if let Down::Assign { task_id, token, .. } = &msg {
            // One lease, one holder: a token is never handed to two workers.
            let owner = self.lease_owner.entry((*task_id, *token)).or_insert_with(|| worker.id.clone());
            if *owner != worker.id {
                return Err(Violation::new(
                    "one-lease",
                    format!("{task_id} token {token} given to {owner} and to {}", worker.id),
                ));
            }
        }
        let worker = &mut self.workers[slot];
        match msg {
            // Sent before the coordinator read the worker's pause; it takes
            // the task back when it does.
            Down::Assign { .. } if worker.owner_busy => {}
            Down::Assign { task_id, token, input } => {
                if worker.running.get(&task_id) == Some(&token)
                    || worker.unacked.get(&task_id).is_some_and(|u| u.0 == token)
                {
                    return Ok(());
                }
                worker.running.insert(task_id, token);
                let factor = if worker.slow { 10 } else { 1 };
                let run_ms = task_ms * factor + self.rng.random_range(0..=task_ms);
                self.at(run_ms, Ev::TaskDone { slot, incarnation, task_id, token, input });
            }
            Down::Revoke { task_id, token } => {
                if !worker.zombie {
                    if worker.running.get(&task_id) == Some(&token) {
                        worker.running.remove(&task_id);
                    }
                    if worker.unacked.get(&task_id).is_some_and(|u| u.0 == token) {
                        worker.unacked.remove(&task_id);
                    }
                }
            }
            Down::Ack { task_id, token } => {
                if worker.unacked.get(&task_id).is_some_and(|u| u.0 == token) {
                    worker.unacked.remove(&task_id);
                }
            }
            Down::Challenge { round } => {
                // A slow worker answers slowly but in time: its claim is what
                // it has. Failures are faults, so they stop with the others.
                let slow = worker.slow;
                let failed = self.in_fault_window() && roll(&mut self.rng, self.config.faults.challenge_fail_per_mille);
                let delay = self.rng.random_range(20..=200) * if slow { 10 } else { 1 };
                self.at(delay, Ev::ChallengeAnswered { slot, incarnation, session, round, passed: !failed });
            }
            Down::Closed => {
                worker.session = 0;
                let backoff = worker.reconnect_backoff_ms;
                worker.reconnect_backoff_ms = (backoff * 2).min(2_000);
                let delay = backoff / 2 + self.rng.random_range(0..=backoff / 2);
                self.at(delay, Ev::Reconnect { slot, incarnation });
            }
        }
        if let Down::Assign { .. } | Down::Ack { .. } = msg {
            self.workers[slot].reconnect_backoff_ms = 100;
        }
        Ok(())
    }

    fn task_done(&mut self, slot: usize, incarnation: u64, task_id: TaskId, token: LeaseToken, input: BlobId) {
        let fail = self.in_fault_window() && roll(&mut self.rng, self.config.faults.task_fail_per_mille);
        let worker = &mut self.workers[slot];
        if !worker.up || worker.incarnation != incarnation || worker.running.get(&task_id) != Some(&token) {
            return;
        }
        worker.running.remove(&task_id);
        let session = worker.session;
        let msg = if fail {
            self.stats.task_failures += 1;
            Up::Failed { task_id, token }
        } else {
            let output = worker.output(input, self.config.cheats.intermittent_per_mille, &mut self.cheat_rng);
            worker.unacked.insert(task_id, (token, output));
            Up::Done { task_id, token, output }
        };
        if session != 0 {
            self.send_up(slot, session, msg);
        }
    }

    fn chaos(&mut self) -> Result<(), Violation> {
        if !self.in_fault_window() {
            return Ok(());
        }
        let faults = self.config.faults.clone();
        let n_workers = self.workers.len();
        if n_workers > 0 && roll(&mut self.rng, faults.partition_per_mille) {
            let slot = self.rng.random_range(0..n_workers);
            let blocked = [Blocked::Both, Blocked::Up, Blocked::Down][self.rng.random_range(0..3)];
            let until = self.now + self.rng.random_range(1..=faults.partition_max_ms.max(1));
            self.workers[slot].partition = Some((blocked, until));
            self.stats.partitions += 1;
            self.record(10, || format!("worker {slot} partitioned ({blocked:?}) until {until} ms"));
        }
        if n_workers > 0 && roll(&mut self.rng, faults.worker_crash_per_mille) {
            let slot = self.rng.random_range(0..n_workers);
            if self.workers[slot].up {
                let wipe = roll(&mut self.rng, faults.worker_wipe_per_mille);
                self.crash_worker(slot, wipe);
            }
        }
        if self.core.is_some() && roll(&mut self.rng, faults.coordinator_crash_per_mille) {
            self.crash_coordinator();
        }
        if roll(&mut self.rng, faults.clock_jump_per_mille) {
            let max = faults.clock_jump_max_ms as i64;
            let jump = self.rng.random_range(-max..=max);
            self.clock_offset_ms += jump;
            self.stats.clock_jumps += 1;
            self.record(11, || format!("coordinator clock jumps {jump} ms"));
        }
        if roll(&mut self.rng, faults.owner_return_per_mille) {
            // The owner of a machine whose worker is up, connected and not
            // paused already.
            let candidates: Vec<usize> = (0..n_workers)
                .filter(|&slot| {
                    let worker = &self.workers[slot];
                    worker.up && worker.session != 0 && !worker.owner_busy
                })
                .collect();
            if !candidates.is_empty() {
                let slot = candidates[self.rng.random_range(0..candidates.len())];
                self.owner_returns(slot);
            }
        }
        Ok(())
    }

    /// The owner of the machine in `slot` comes back: the worker stops its
    /// running tasks (finished results still wait for their acknowledgement),
    /// tells the coordinator, and takes nothing until the owner is done.
    fn owner_returns(&mut self, slot: usize) {
        self.stats.owner_returns += 1;
        let worker = &mut self.workers[slot];
        worker.owner_busy = true;
        let stopped = std::mem::take(&mut worker.running).len();
        let session = worker.session;
        let busy_ms = self.rng.random_range(OWNER_BUSY_MS);
        self.record(15, || format!("the owner of worker {slot} uses it for {busy_ms} ms ({stopped} tasks stopped)"));
        self.send_up(slot, session, Up::Pause);
        self.at(busy_ms, Ev::OwnerIdle { slot });
    }

    fn crash_worker(&mut self, slot: usize, wipe: bool) {
        self.stats.worker_crashes += 1;
        let worker = &mut self.workers[slot];
        worker.up = false;
        worker.incarnation += 1;
        worker.session = 0;
        worker.running.clear();
        worker.unacked.clear();
        if let Some(cheat) = &mut worker.cheat {
            cheat.forget();
        }
        if wipe {
            // A new data dir means a new key, hence a new worker id.
            self.stats.worker_wipes += 1;
            let id = WorkerId(format!("w{}", self.next_identity));
            self.next_identity += 1;
            self.slots_by_id.insert(id.clone(), slot);
            worker.id = id;
        }
        self.record(12, || format!("worker {slot} crashes (wipe: {wipe})"));
        let delay = self.rng.random_range(50..2_000);
        self.at(delay, Ev::WorkerRestart { slot });
    }
}
