//! Laws of the coordinator core under random event sequences.

use std::collections::HashMap;

use iog_core::{Action, Change, Config, Core, Event, NewJob, RunningTask};
use iog_ledger::Amount;
use iog_sched::{DeviceGroup, Offer, Requirements};
use iog_types::{BlobId, DeviceKind, JobId, LeaseToken, TaskId, TaskState, WorkerId};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Connect { worker: u8, slots: u32, keep_running: bool },
    Disconnect { worker: u8 },
    Heartbeat { worker: u8, honest: bool },
    Submit { n_tasks: u32, wants: Wants },
    Pause { worker: u8, paused: bool },
    Succeed { pick: usize },
    Fail { pick: usize },
    ReplayOld { pick: usize },
    Cancel { pick: usize },
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => (0u8..4, 1u32..3, any::<bool>()).prop_map(|(worker, slots, keep_running)| Op::Connect { worker, slots, keep_running }),
        1 => (0u8..4).prop_map(|worker| Op::Disconnect { worker }),
        3 => (0u8..4, prop::bool::weighted(0.9)).prop_map(|(worker, honest)| Op::Heartbeat { worker, honest }),
        1 => (1u32..6, wants()).prop_map(|(n_tasks, wants)| Op::Submit { n_tasks, wants }),
        1 => (0u8..4, any::<bool>()).prop_map(|(worker, paused)| Op::Pause { worker, paused }),
        4 => any::<usize>().prop_map(|pick| Op::Succeed { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Fail { pick }),
        1 => any::<usize>().prop_map(|pick| Op::ReplayOld { pick }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        2 => (0u64..250).prop_map(|ms| Op::Advance { ms }),
    ]
}

/// What a job asks for: (kind, memory GiB, count, regions, price cap in
/// tenths of IO, gang).
type Wants = (Option<DeviceKind>, u64, u32, Vec<&'static str>, Option<u64>, bool);

fn wants() -> impl Strategy<Value = Wants> {
    (
        prop_oneof![Just(None), Just(Some(DeviceKind::Cpu)), Just(Some(DeviceKind::Gpu))],
        prop_oneof![Just(0u64), Just(24), Just(80)],
        1u32..3,
        prop_oneof![Just(vec![]), Just(vec!["eu"]), Just(vec!["eu", "asia"])],
        prop::option::of(0u64..10),
        prop::bool::weighted(0.25),
    )
}

fn requirements((kind, memory_gib, count, regions, cap, gang): &Wants) -> Requirements {
    Requirements {
        kind: *kind,
        count: *count,
        memory_bytes_min: memory_gib << 30,
        models: Vec::new(),
        regions: regions.iter().map(|r| (*r).to_owned()).collect(),
        price_io_per_device_hour_max: cap.map(|tenths| Amount::from_base_units(tenths * 100_000_000)),
        trust_min: 0,
        gang_latency_ms_max: gang.then_some(1_000),
        software: Vec::new(),
        replicas_same_model: false,
    }
}

/// The offers of the four workers of the fuzzed fleet, which differ in
/// kind, memory, count, region and price.
fn offer_of(idx: u8, slots: u32) -> Offer {
    let gpu = |model: &str, gib: u64, count: u32| DeviceGroup::gpu(model, gib << 30, count);
    let tenths = |n: u64| Amount::from_base_units(n * 100_000_000);
    match idx {
        0 => Offer {
            region: "eu".into(),
            software: vec![iog_sched::Software { name: "wasm".into(), version: "1".into() }],
            ..Offer::cpu(slots)
        },
        1 => Offer {
            region: "us-east".into(),
            price_io_per_device_hour: tenths(5),
            ..Offer::free(vec![gpu("RTX 4090", 24, slots)])
        },
        2 => {
            Offer { region: "eu".into(), price_io_per_device_hour: tenths(9), ..Offer::free(vec![gpu("A100", 80, 2)]) }
        }
        _ => Offer { region: "asia".into(), price_io_per_device_hour: tenths(2), ..Offer::cpu(slots) },
    }
}

/// Watches every action the core emits and checks the laws that span steps.
#[derive(Default)]
struct Observer {
    /// The offer each worker made last, and the requirements of each job,
    /// to check every lease against every hard constraint.
    offers: HashMap<WorkerId, Offer>,
    wanted: HashMap<JobId, Requirements>,
    outstanding: Vec<(WorkerId, TaskId, LeaseToken)>,
    every_assign: Vec<(WorkerId, TaskId, LeaseToken)>,
    last_token: HashMap<TaskId, LeaseToken>,
    committed: HashMap<TaskId, BlobId>,
    jobs: Vec<JobId>,
}

impl Observer {
    fn see(&mut self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Persist(Change::TaskLeased { ref worker_id, task_id, price_io_per_hour, .. }) => {
                    let offer = &self.offers[worker_id];
                    let req = &self.wanted[&task_id.job_id];
                    let fits = offer.groups.iter().any(|g| {
                        req.fits(g, g.count, &offer.region, 0, offer.price_io_per_device_hour, &offer.software_names())
                    });
                    assert!(fits, "{task_id} leased to {worker_id} whose offer {offer:?} breaks {req:?}");
                    let expected = offer.price_io_per_device_hour.checked_mul_div(u64::from(req.count), 1).unwrap();
                    assert_eq!(price_io_per_hour, expected, "a lease pays the worker's ask for each device");
                }
                Action::Assign { worker_id, task_id, token, .. } => {
                    assert!(!self.committed.contains_key(&task_id), "{task_id} leased after it committed");
                    if let Some(last) = self.last_token.insert(task_id, token) {
                        assert!(token > last, "{task_id}: token {token} not above {last}");
                    }
                    self.outstanding.push((worker_id.clone(), task_id, token));
                    self.every_assign.push((worker_id, task_id, token));
                }
                Action::Persist(Change::TaskCommitted { task_id, output, .. }) => {
                    assert!(self.committed.insert(task_id, output).is_none(), "{task_id} committed twice");
                }
                Action::Revoke { task_id, token, .. } => self.outstanding.retain(|l| (l.1, l.2) != (task_id, token)),
                Action::WorkerDead { worker_id } => self.outstanding.retain(|l| l.0 != worker_id),
                _ => {}
            }
        }
    }
}

fn worker(idx: u8) -> WorkerId {
    WorkerId(format!("w{idx}"))
}

fn output_of(task_id: TaskId, worker_id: &WorkerId) -> BlobId {
    BlobId::of(format!("{task_id}{worker_id}").as_bytes())
}

fn run(ops: Vec<Op>) {
    let config = Config {
        heartbeat_interval_ms: 100,
        missed_heartbeats_max: 3,
        max_attempts_default: 4,
        retry_backoff_base_ms: 5,
        retry_backoff_max_ms: 40,
        ..Config::default()
    };
    let mut core = Core::new(config);
    let mut seen = Observer::default();
    let mut now = 0u64;
    let mut next_job = 1u64;
    for op in ops {
        let event = match op {
            Op::Connect { worker: idx, slots, keep_running } => {
                let worker_id = worker(idx);
                let running = if keep_running {
                    seen.outstanding
                        .iter()
                        .filter(|l| l.0 == worker_id)
                        .map(|l| RunningTask { task_id: l.1, token: l.2 })
                        .collect()
                } else {
                    seen.outstanding.retain(|l| l.0 != worker_id);
                    vec![]
                };
                let offer = offer_of(idx, slots);
                seen.offers.insert(worker_id.clone(), offer.clone());
                Event::WorkerConnected { worker_id, offer, trust: 0, running }
            }
            Op::Disconnect { worker: idx } => Event::WorkerDisconnected { worker_id: worker(idx) },
            Op::Heartbeat { worker: idx, honest } => {
                // An honest heartbeat lists what the worker was given; a
                // dishonest one forgets it, which must only cost a retry.
                let worker_id = worker(idx);
                let held = if honest {
                    seen.outstanding
                        .iter()
                        .filter(|l| l.0 == worker_id)
                        .map(|l| RunningTask { task_id: l.1, token: l.2 })
                        .collect()
                } else {
                    vec![]
                };
                Event::Heartbeat { worker_id, held }
            }
            Op::Pause { worker: idx, paused } => {
                if paused {
                    // The worker stops everything it runs.
                    seen.outstanding.retain(|l| l.0 != worker(idx));
                }
                Event::WorkerPaused { worker_id: worker(idx), paused, reason: "owner".into() }
            }
            Op::Submit { n_tasks, ref wants } => {
                let job_id = JobId(next_job);
                next_job += 1;
                seen.jobs.push(job_id);
                seen.wanted.insert(job_id, requirements(wants));
                Event::JobSubmitted(NewJob {
                    chain: None,
                    job_id,
                    name: "p".into(),
                    workload: "noop".into(),
                    spec_json: vec![],
                    max_attempts: None,
                    task_timeout_ms: None,
                    inputs: (0..n_tasks).map(|idx| BlobId::of(&idx.to_le_bytes())).collect(),
                    requirements: requirements(wants),
                    submitter: format!("s{}", job_id.0 % 3),
                    verify: iog_types::Verify::None,
                    sealed: false,
                    assets: Vec::new(),
                })
            }
            Op::Succeed { pick } | Op::Fail { pick } if !seen.outstanding.is_empty() => {
                let (worker_id, task_id, token) = seen.outstanding.remove(pick % seen.outstanding.len());
                if matches!(op, Op::Succeed { .. }) {
                    let output = output_of(task_id, &worker_id);
                    Event::TaskSucceeded { worker_id, task_id, token, output, duration_ms: 1, device: "cpu0".into() }
                } else {
                    Event::TaskFailed { worker_id, task_id, token, error: "boom".into() }
                }
            }
            Op::ReplayOld { pick } if !seen.every_assign.is_empty() => {
                let (worker_id, task_id, token) = seen.every_assign[pick % seen.every_assign.len()].clone();
                let output = output_of(task_id, &worker_id);
                Event::TaskSucceeded { worker_id, task_id, token, output, duration_ms: 1, device: "cpu0".into() }
            }
            Op::Cancel { pick } if !seen.jobs.is_empty() => {
                Event::CancelJob { job_id: seen.jobs[pick % seen.jobs.len()] }
            }
            Op::Advance { ms } => {
                now += ms;
                Event::Tick
            }
            _ => Event::Tick,
        };
        let before: HashMap<TaskId, BlobId> = seen.committed.clone();
        seen.see(core.handle(event, now));
        for (task_id, output) in before {
            // In memory while its job runs; afterwards only the store has it,
            // and the observer refuses any second commit of the task.
            match core.task(task_id) {
                Some(task) => assert_eq!(task.output, Some(output), "a committed result changed"),
                None => assert!(core.job(task_id.job_id).unwrap().state.is_final()),
            }
        }
        if let Err(broken) = core.check_invariants() {
            panic!("invariant broken: {broken}");
        }
        // A gang runs whole or not at all, on distinct workers.
        for job_id in &seen.jobs {
            if seen.wanted[job_id].gang_latency_ms_max.is_none() {
                continue;
            }
            let Some(job) = core.job(*job_id) else { continue };
            let tasks: Vec<_> = (0..job.n_tasks).filter_map(|idx| core.task(TaskId::new(*job_id, idx))).collect();
            let leased: Vec<_> = tasks.iter().filter(|t| t.state == TaskState::Leased).collect();
            let unfinished = tasks.iter().filter(|t| matches!(t.state, TaskState::Queued | TaskState::Leased)).count();
            assert!(
                leased.is_empty() || leased.len() == unfinished,
                "{job_id}: {} of {unfinished} members run",
                leased.len()
            );
            let holders: std::collections::HashSet<_> = leased.iter().map(|t| t.holder.clone()).collect();
            assert_eq!(holders.len(), leased.len(), "{job_id}: two members on one worker");
        }
    }

    // Liveness: faults stop, healthy workers join (as many as a gang may
    // need) and do everything they are given; every job must reach a final
    // state in bounded time.
    let healthy: Vec<WorkerId> = (0..6).map(|idx| WorkerId(format!("healthy{idx}"))).collect();
    for worker_id in &healthy {
        // Each offers what any job may ask for: CPU slots and large GPUs, in eu, free.
        let mut offer = Offer { region: "eu".into(), ..Offer::cpu(4) };
        offer.groups[0].memory_bytes = 256 << 30;
        offer.groups.push(DeviceGroup::gpu("H100", 80 << 30, 4));
        seen.offers.insert(worker_id.clone(), offer.clone());
        let connect = Event::WorkerConnected { worker_id: worker_id.clone(), offer, trust: 0, running: vec![] };
        seen.see(core.handle(connect, now));
    }
    for _ in 0..2_000 {
        if seen.jobs.iter().all(|job_id| core.job(*job_id).unwrap().state.is_final()) {
            break;
        }
        now += 20;
        for worker_id in &healthy {
            let held = seen
                .outstanding
                .iter()
                .filter(|l| l.0 == *worker_id)
                .map(|l| RunningTask { task_id: l.1, token: l.2 })
                .collect();
            seen.see(core.handle(Event::Heartbeat { worker_id: worker_id.clone(), held }, now));
        }
        seen.see(core.handle(Event::Tick, now));
        let mine: Vec<_> = seen.outstanding.iter().filter(|l| healthy.contains(&l.0)).cloned().collect();
        for (worker_id, task_id, token) in mine {
            seen.outstanding.retain(|l| (l.1, l.2) != (task_id, token));
            let output = output_of(task_id, &worker_id);
            seen.see(core.handle(
                Event::TaskSucceeded { worker_id, task_id, token, output, duration_ms: 1, device: "cpu0".into() },
                now,
            ));
        }
        core.check_invariants().unwrap();
    }
    for job_id in &seen.jobs {
        let job = core.job(*job_id).unwrap();
        assert!(job.state.is_final(), "{job_id} still {} after faults stopped", job.state);
        for idx in 0..job.n_tasks {
            assert!(core.task(TaskId::new(*job_id, idx)).is_none(), "a finished job's tasks leave memory");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]
    #[test]
    fn leases_commits_and_liveness_hold_under_random_events(ops in prop::collection::vec(op(), 1..120)) {
        run(ops);
    }
}
