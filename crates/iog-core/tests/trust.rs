//! Hardware challenges through the core: trust, suspension and slashing.

use iog_core::{Action, Change, Config, Core, Event, NewJob, Payments};
use iog_ledger::{AccountId, Address, Amount, Ledger, TransferId};
use iog_sched::{Offer, Requirements};
use iog_types::{BlobId, DeviceKind, JobId, WorkerId};

fn io(text: &str) -> Amount {
    text.parse().unwrap()
}

fn config() -> Config {
    Config { heartbeat_interval_ms: 1_000, ..Config::default() }
}

fn job(id: u64, n_tasks: u32, trust_min: u8) -> NewJob {
    NewJob {
        chain: None,
        job_id: JobId(id),
        name: format!("job{id}"),
        workload: "noop".to_owned(),
        spec_json: b"{}".to_vec(),
        max_attempts: None,
        task_timeout_ms: None,
        inputs: (0..n_tasks).map(|idx| BlobId::of(&[id as u8, idx as u8])).collect(),
        requirements: Requirements { trust_min, ..Requirements::one(DeviceKind::Cpu) },
        submitter: "s".to_owned(),
        verify: iog_types::Verify::None,
        sealed: false,
        assets: Vec::new(),
    }
}

fn leased_to(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Persist(Change::TaskLeased { worker_id, .. }) => Some(worker_id.0.clone()),
            _ => None,
        })
        .collect()
}

fn challenge(core: &mut Core, name: &str, passed: bool, now: u64) -> Vec<Action> {
    let detail = if passed { String::new() } else { "missed its deadline".to_owned() };
    core.handle(Event::ChallengeChecked { worker_id: WorkerId(name.to_owned()), round: 0, passed, detail }, now)
}

fn worker(core: &Core, name: &str) -> iog_core::WorkerView {
    core.workers().into_iter().find(|w| w.worker_id.0 == name).unwrap()
}

#[test]
fn a_passed_challenge_raises_trust_and_a_failed_one_stops_new_tasks_until_the_next_pass() {
    let mut core = Core::new(config());
    core.handle(
        Event::WorkerConnected { worker_id: WorkerId("w".into()), offer: Offer::cpu(4), trust: 0, running: vec![] },
        0,
    );
    // Trust 1 is out of reach for an unstaked, unverified worker.
    assert!(leased_to(&core.handle(Event::JobSubmitted(job(1, 1, 1)), 10)).is_empty());
    assert!(core.waiting_reason(JobId(1)).unwrap().contains("trust"), "{:?}", core.waiting_reason(JobId(1)));

    let placed = leased_to(&challenge(&mut core, "w", true, 20));
    assert_eq!(placed, ["w"], "verified hardware is trust 1 and the waiting job starts");
    assert_eq!(worker(&core, "w").trust, 1);
    core.check_invariants().unwrap();

    // A failure: no new task, trust back to 0, the running lease kept.
    let failed = challenge(&mut core, "w", false, 30);
    assert!(!failed.iter().any(|a| matches!(a, Action::Revoke { .. } | Action::SlashStake { .. })), "{failed:?}");
    assert!(leased_to(&core.handle(Event::JobSubmitted(job(2, 1, 0)), 40)).is_empty(), "suspended");
    let view = worker(&core, "w");
    assert_eq!((view.trust, view.available, view.n_leases), (0, false, 1));
    assert_eq!((view.challenges.passed, view.challenges.failed, view.challenges.failed_in_row), (1, 1, 1));
    core.check_invariants().unwrap();

    // Passing again lifts the suspension.
    assert_eq!(leased_to(&challenge(&mut core, "w", true, 50)), ["w"]);
    assert!(worker(&core, "w").challenges.verified());
    core.check_invariants().unwrap();
}

#[test]
fn failing_three_in_a_row_slashes_and_a_pass_in_between_resets_the_count() {
    let mut core = Core::new(config());
    core.handle(
        Event::WorkerConnected { worker_id: WorkerId("w".into()), offer: Offer::cpu(1), trust: 1, running: vec![] },
        0,
    );
    let slashes = |actions: &[Action]| actions.iter().filter(|a| matches!(a, Action::SlashStake { .. })).count();
    assert_eq!(slashes(&challenge(&mut core, "w", false, 1)), 0);
    assert_eq!(slashes(&challenge(&mut core, "w", false, 2)), 0);
    assert_eq!(slashes(&challenge(&mut core, "w", true, 3)), 0);
    assert_eq!(slashes(&challenge(&mut core, "w", false, 4)), 0);
    assert_eq!(slashes(&challenge(&mut core, "w", false, 5)), 0);
    let third: Vec<Action> =
        challenge(&mut core, "w", false, 6).into_iter().filter(|a| matches!(a, Action::SlashStake { .. })).collect();
    let [Action::SlashStake { worker_id, bps, reason_key }] = third.as_slice() else { panic!("{third:?}") };
    assert_eq!((worker_id.0.as_str(), *bps), ("w", 1_000));
    assert!(reason_key.contains("missed its deadline"), "{reason_key}");
    // A reconnect does not wipe the record.
    core.handle(Event::WorkerDisconnected { worker_id: WorkerId("w".into()) }, 7);
    core.handle(
        Event::WorkerConnected { worker_id: WorkerId("w".into()), offer: Offer::cpu(1), trust: 1, running: vec![] },
        8,
    );
    assert_eq!(worker(&core, "w").challenges.failed_in_row, 3);
    assert!(!worker(&core, "w").available);
    core.check_invariants().unwrap();
}

#[test]
fn the_payments_slash_a_tenth_of_the_active_stake_once_per_reason() {
    let key = Address::from_public_key([7; 32]);
    let worker = key.to_string();
    let mut ledger = Ledger::new();
    ledger.mint(TransferId::derive("funds"), AccountId::Wallet(key), io("50"), "test".into(), 0).unwrap();
    let mut payments = Payments::new(ledger, 0, &[]);
    payments.stake(&worker, io("40"), "s1", 1).unwrap();
    let slash = Action::SlashStake {
        worker_id: WorkerId(worker.clone()),
        bps: 1_000,
        reason_key: "challenges failed 3".into(),
    };
    assert!(payments.settle(&slash, 10).is_none());
    assert_eq!(payments.stake_of(&worker).active, io("36"));
    // The same proof again changes nothing.
    payments.settle(&slash, 11);
    assert_eq!(payments.stake_of(&worker).active, io("36"));
    assert_eq!(payments.ledger().balance(&AccountId::Rewards).posted.to_amount(), Some(io("4")));
    payments.check().unwrap();
}

fn challenges(actions: &[Action]) -> usize {
    actions.iter().filter(|a| matches!(a, Action::Challenge { .. })).count()
}

#[test]
fn a_worker_is_challenged_on_connect_and_takes_no_task_until_checked_then_about_every_interval() {
    let config = Config {
        challenge_interval_ms: 60_000,
        challenge_retry_ms: 5_000,
        heartbeat_interval_ms: 1_000_000,
        ..config()
    };
    let mut core = Core::new(config);
    core.handle(Event::JobSubmitted(job(1, 1, 0)), 0);
    let joined = core.handle(
        Event::WorkerConnected { worker_id: WorkerId("w".into()), offer: Offer::cpu(1), trust: 0, running: vec![] },
        10,
    );
    assert_eq!(challenges(&joined), 1);
    assert!(leased_to(&joined).is_empty(), "no task while the challenge runs: {joined:?}");
    assert!(worker(&core, "w").challenging);
    core.check_invariants().unwrap();
    let checked = challenge(&mut core, "w", true, 500);
    let Some(Action::Persist(Change::TaskLeased { task_id, token, .. })) =
        checked.iter().find(|a| matches!(a, Action::Persist(Change::TaskLeased { .. })))
    else {
        panic!("checked: the queue moves: {checked:?}")
    };
    let (task_id, token) = (*task_id, *token);
    let output = BlobId::of(b"out");
    core.handle(
        Event::TaskSucceeded {
            worker_id: WorkerId("w".into()),
            task_id,
            token,
            output,
            duration_ms: 5,
            device: "cpu0".into(),
        },
        600,
    );

    // The next round comes between half and one and a half intervals later.
    let first_due = (1_000..=100_000)
        .step_by(1_000)
        .find(|now| challenges(&core.handle(Event::Tick, *now)) > 0)
        .expect("a routine challenge fell due");
    assert!((30_500..=91_500).contains(&first_due), "{first_due}");
    assert!(worker(&core, "w").challenging);
    core.check_invariants().unwrap();
}

#[test]
fn an_offer_lending_more_memory_is_challenged_at_once() {
    let config = Config { challenge_interval_ms: 3_600_000, heartbeat_interval_ms: 1_000_000, ..config() };
    let mut core = Core::new(config);
    let lending = |memory_bytes: u64| {
        let mut offer = Offer::cpu(1);
        offer.groups[0].memory_bytes = memory_bytes;
        offer
    };
    let w = WorkerId("w".into());
    core.handle(Event::WorkerConnected { worker_id: w.clone(), offer: lending(1 << 30), trust: 0, running: vec![] }, 0);
    challenge(&mut core, "w", true, 100);
    // Lending less, or the same, proves nothing new.
    core.handle(Event::OfferChanged { worker_id: w.clone(), offer: lending(1 << 29) }, 200);
    assert_eq!(challenges(&core.handle(Event::Tick, 300)), 0);
    // Lending more is challenged at once, not an hour later.
    let raised = core.handle(Event::OfferChanged { worker_id: w.clone(), offer: lending(1 << 31) }, 400);
    assert_eq!(challenges(&raised), 1, "{raised:?}");
    assert!(worker(&core, "w").challenging);
    core.check_invariants().unwrap();
}

/// Plays a round to its end: the report of the round the core named.
fn pass_round(core: &mut Core, actions: &[Action], now: u64) -> Vec<Action> {
    let (worker_id, round) = actions
        .iter()
        .find_map(|a| match a {
            Action::Challenge { worker_id, round } => Some((worker_id.clone(), *round)),
            _ => None,
        })
        .expect("a round was started");
    core.handle(Event::ChallengeChecked { worker_id, round, passed: true, detail: String::new() }, now)
}

#[test]
fn memory_lent_beyond_what_a_round_proved_takes_no_task_until_proven() {
    let config = Config { challenge_interval_ms: 3_600_000, heartbeat_interval_ms: 1_000_000, ..config() };
    let lending = |memory_bytes: u64| {
        let mut offer = Offer::cpu(1);
        offer.groups[0].memory_bytes = memory_bytes;
        offer
    };
    let w = WorkerId("w".into());
    let connect = |core: &mut Core| {
        core.handle(
            Event::WorkerConnected { worker_id: w.clone(), offer: lending(1 << 30), trust: 0, running: vec![] },
            0,
        )
    };

    // Idle, with a job queued: the raise starts a round at once, and the
    // job is placed only once it passes.
    let mut core = Core::new(config.clone());
    let joined = connect(&mut core);
    pass_round(&mut core, &joined, 10);
    let raised = core.handle(Event::OfferChanged { worker_id: w.clone(), offer: lending(1 << 34) }, 20);
    assert_eq!(challenges(&raised), 1, "{raised:?}");
    assert!(leased_to(&core.handle(Event::JobSubmitted(job(1, 1, 0)), 30)).is_empty());
    core.check_invariants().unwrap();
    assert_eq!(leased_to(&pass_round(&mut core, &raised, 40)), ["w"]);

    // Raised while its join round runs: that round proved the old amount,
    // so the next comes at the next tick, and no task goes to it between.
    let mut core = Core::new(config.clone());
    let joined = connect(&mut core);
    core.handle(Event::OfferChanged { worker_id: w.clone(), offer: lending(1 << 34) }, 5);
    core.handle(Event::JobSubmitted(job(1, 1, 0)), 6);
    assert!(leased_to(&pass_round(&mut core, &joined, 10)).is_empty());
    core.check_invariants().unwrap();
    let next = core.handle(Event::Tick, 20);
    assert_eq!(challenges(&next), 1, "{next:?}");
    assert_eq!(leased_to(&pass_round(&mut core, &next, 30)), ["w"]);

    // Raised while running a task: it takes no other, and is challenged at
    // the first tick after the task ends.
    let mut core = Core::new(config);
    let joined = connect(&mut core);
    core.handle(Event::JobSubmitted(job(1, 2, 0)), 1);
    let placed = pass_round(&mut core, &joined, 10);
    let Some(Action::Persist(Change::TaskLeased { task_id, token, .. })) =
        placed.iter().find(|a| matches!(a, Action::Persist(Change::TaskLeased { .. })))
    else {
        panic!("{placed:?}")
    };
    let (task_id, token) = (*task_id, *token);
    let raised = core.handle(Event::OfferChanged { worker_id: w.clone(), offer: lending(1 << 34) }, 20);
    assert_eq!(challenges(&raised), 0);
    assert_eq!(challenges(&core.handle(Event::Tick, 30)), 0, "busy");
    let output = BlobId::of(b"out");
    let done = core.handle(
        Event::TaskSucceeded { worker_id: w.clone(), task_id, token, output, duration_ms: 5, device: "cpu0".into() },
        40,
    );
    assert!(leased_to(&done).is_empty(), "the second task waits for the round: {done:?}");
    let next = core.handle(Event::Tick, 50);
    assert_eq!(challenges(&next), 1, "{next:?}");
    assert_eq!(leased_to(&pass_round(&mut core, &next, 60)), ["w"]);
    core.check_invariants().unwrap();
}

#[test]
fn a_busy_worker_is_challenged_only_once_idle() {
    let config = Config {
        challenge_interval_ms: 10_000,
        challenge_retry_ms: 1_000,
        heartbeat_interval_ms: 1_000_000,
        ..config()
    };
    let mut core = Core::new(config);
    core.handle(
        Event::WorkerConnected { worker_id: WorkerId("w".into()), offer: Offer::cpu(1), trust: 0, running: vec![] },
        0,
    );
    challenge(&mut core, "w", true, 10);
    let leased = core.handle(Event::JobSubmitted(job(1, 1, 0)), 20);
    let Some(Action::Persist(Change::TaskLeased { task_id, token, .. })) =
        leased.iter().find(|a| matches!(a, Action::Persist(Change::TaskLeased { .. })))
    else {
        panic!("{leased:?}")
    };
    let (task_id, token) = (*task_id, *token);
    for now in (1_000..=40_000).step_by(1_000) {
        core.handle(
            Event::Heartbeat { worker_id: WorkerId("w".into()), held: vec![iog_core::RunningTask { task_id, token }] },
            now,
        );
        assert_eq!(challenges(&core.handle(Event::Tick, now)), 0, "never while it runs a task ({now} ms)");
    }
    let output = BlobId::of(b"out");
    core.handle(
        Event::TaskSucceeded {
            worker_id: WorkerId("w".into()),
            task_id,
            token,
            output,
            duration_ms: 5,
            device: "cpu0".into(),
        },
        40_100,
    );
    let mut started = 0;
    for now in (41_000..=43_000).step_by(500) {
        started += challenges(&core.handle(Event::Tick, now));
    }
    assert_eq!(started, 1, "idle again: the waiting round starts within a retry");
    core.check_invariants().unwrap();
}

#[test]
fn gpu_offers_are_challenged_like_cpu_ones_when_the_worker_runs_kernels_on_them() {
    let config = Config { challenge_interval_ms: 60_000, ..config() };
    let mut core = Core::new(config);
    // Without kernels nothing can check the GPU: no round, trust from stake.
    let h100 = iog_sched::DeviceGroup::gpu("H100", 80 << 30, 1);
    let offer = Offer { groups: vec![h100.clone()], ..Offer::cpu(1) };
    let joined =
        core.handle(Event::WorkerConnected { worker_id: WorkerId("n".into()), offer, trust: 1, running: vec![] }, 0);
    assert_eq!(challenges(&joined), 0);
    assert_eq!(worker(&core, "n").trust, 1, "its trust is its stake's");

    let offer = Offer { groups: vec![iog_sched::DeviceGroup { kernels: true, ..h100.clone() }], ..Offer::cpu(1) };
    let joined =
        core.handle(Event::WorkerConnected { worker_id: WorkerId("g".into()), offer, trust: 1, running: vec![] }, 0);
    assert_eq!(challenges(&joined), 1, "a GPU is challenged at its model's rate on join");
    assert!(!worker(&core, "g").available, "and takes no task until checked");
    challenge(&mut core, "g", false, 10);
    let view = worker(&core, "g");
    assert!(!view.available && view.challenges.failed == 1, "a failed GPU round stops new tasks");
    challenge(&mut core, "g", true, 20);
    let view = worker(&core, "g");
    assert!(view.available && view.trust == 2, "{view:?}");
    // Verified hardware says nothing of a GPU lent later without kernels.
    let offer = Offer { groups: vec![h100], ..Offer::cpu(1) };
    core.handle(Event::OfferChanged { worker_id: WorkerId("g".into()), offer }, 30);
    assert_eq!(worker(&core, "g").trust, 1, "back to its stake's trust");
    core.check_invariants().unwrap();
}

#[test]
fn a_worker_that_fails_its_tasks_loses_reputation_and_ranks_below_an_equal_reliable_one() {
    let mut core = Core::new(Config { retry_backoff_base_ms: 1, ..config() });
    let offer = Offer { price_io_per_device_hour: io("1"), ..Offer::cpu(1) };
    for name in ["flaky", "steady"] {
        core.handle(
            Event::WorkerConnected {
                worker_id: WorkerId(name.into()),
                offer: offer.clone(),
                trust: 0,
                running: vec![],
            },
            0,
        );
    }
    let mut first = job(1, 20, 0);
    first.max_attempts = Some(100);
    let mut actions = core.handle(Event::JobSubmitted(first), 1);
    let mut now = 2;
    // Every task on the flaky worker fails, every one on the steady worker commits.
    for _ in 0..200 {
        let leases: Vec<(WorkerId, iog_types::TaskId, iog_types::LeaseToken)> = actions
            .iter()
            .filter_map(|a| match a {
                Action::Persist(Change::TaskLeased { worker_id, task_id, token, .. }) => {
                    Some((worker_id.clone(), *task_id, *token))
                }
                _ => None,
            })
            .collect();
        actions = Vec::new();
        for (worker_id, task_id, token) in leases {
            now += 10;
            if worker_id.0 == "flaky" {
                actions.extend(core.handle(Event::TaskFailed { worker_id, task_id, token, error: "boom".into() }, now));
            } else {
                let output = BlobId::of(task_id.to_string().as_bytes());
                actions.extend(core.handle(
                    Event::TaskSucceeded { worker_id, task_id, token, output, duration_ms: 5, device: "cpu0".into() },
                    now,
                ));
            }
        }
        now += 10;
        actions.extend(core.handle(Event::Tick, now));
        if core.job(JobId(1)).unwrap().state.is_final() {
            break;
        }
    }
    core.check_invariants().unwrap();
    let flaky = worker(&core, "flaky").reputation;
    let steady = worker(&core, "steady").reputation;
    assert!(flaky.tasks_failed >= 1 && steady.tasks_committed == 20, "{flaky:?} {steady:?}");
    assert!(flaky.score_milli() < 500 && steady.score_milli() > 500, "{flaky:?} {steady:?}");
    // Both idle now: a new task goes to the better reputation at the same price.
    let placed = leased_to(&core.handle(Event::JobSubmitted(job(2, 1, 0)), now + 10));
    assert_eq!(placed, ["steady"]);
}

/// A worker that lists a task in every heartbeat but never finishes it
/// loses the lease at its job's task timeout; the lapse counts an attempt
/// and against its reputation, and the task goes elsewhere.
#[test]
fn a_lease_past_its_jobs_task_timeout_lapses_whatever_the_heartbeats_say() {
    let mut core = Core::new(Config { retry_backoff_base_ms: 1, ..config() });
    core.handle(
        Event::WorkerConnected {
            worker_id: WorkerId("holder".into()),
            offer: Offer::cpu(1),
            trust: 0,
            running: vec![],
        },
        0,
    );
    let mut timed = job(1, 1, 0);
    timed.task_timeout_ms = Some(5_000);
    let leased = core.handle(Event::JobSubmitted(timed), 10);
    let Some(Action::Persist(Change::TaskLeased { task_id, token, .. })) =
        leased.iter().find(|a| matches!(a, Action::Persist(Change::TaskLeased { .. })))
    else {
        panic!("{leased:?}")
    };
    let (task_id, token) = (*task_id, *token);
    let held = vec![iog_core::RunningTask { task_id, token }];
    for now in (500..5_010).step_by(500) {
        core.handle(Event::Heartbeat { worker_id: WorkerId("holder".into()), held: held.clone() }, now);
        assert!(core.handle(Event::Tick, now).iter().all(|a| !matches!(a, Action::Revoke { .. })), "{now}");
    }
    core.handle(
        Event::WorkerConnected { worker_id: WorkerId("other".into()), offer: Offer::cpu(1), trust: 0, running: vec![] },
        5_005,
    );
    let lapsed = core.handle(Event::Tick, 5_011);
    assert!(
        lapsed.iter().any(|a| matches!(a, Action::Revoke { reason, .. } if reason.contains("task_timeout_ms of 5000"))),
        "{lapsed:?}"
    );
    let mut moved = leased_to(&core.handle(Event::Heartbeat { worker_id: WorkerId("holder".into()), held }, 5_012));
    moved.extend(leased_to(&core.handle(Event::Tick, 5_100)));
    assert_eq!(moved, ["other"]);
    assert_eq!(core.task(task_id).unwrap().attempts, 2);
    assert_eq!(worker(&core, "holder").reputation.leases_lapsed, 1);
    core.check_invariants().unwrap();
}

/// Every whole hour online counts toward reputation; a reconnect starts a
/// new stretch (its partial hour is not counted).
#[test]
fn hours_online_raise_reputation() {
    let hour = 3_600_000;
    let mut core = Core::new(Config { heartbeat_interval_ms: 600_000, ..config() });
    core.handle(
        Event::WorkerConnected { worker_id: WorkerId("w".into()), offer: Offer::cpu(1), trust: 0, running: vec![] },
        0,
    );
    let mut recorded = 0;
    for now in (0..=3 * hour + 1_000).step_by(300_000) {
        let actions = core.handle(Event::Heartbeat { worker_id: WorkerId("w".into()), held: vec![] }, now);
        recorded += actions.iter().filter(|a| matches!(a, Action::Persist(Change::WorkerRecorded { .. }))).count();
    }
    let reputation = worker(&core, "w").reputation;
    assert_eq!((reputation.online_hours, recorded), (3, 3), "one record per hour");
    assert!(reputation.score_milli() > 500);
    core.handle(Event::WorkerDisconnected { worker_id: WorkerId("w".into()) }, 3 * hour + 1_800_000);
    core.handle(
        Event::WorkerConnected { worker_id: WorkerId("w".into()), offer: Offer::cpu(1), trust: 0, running: vec![] },
        3 * hour + 1_900_000,
    );
    core.handle(Event::Heartbeat { worker_id: WorkerId("w".into()), held: vec![] }, 4 * hour + 1_000_000);
    assert_eq!(worker(&core, "w").reputation.online_hours, 3, "the new stretch is not an hour old yet");
    core.handle(Event::Heartbeat { worker_id: WorkerId("w".into()), held: vec![] }, 4 * hour + 1_900_000);
    assert_eq!(worker(&core, "w").reputation.online_hours, 4);
    core.check_invariants().unwrap();
}

/// A round whose answer never comes (its messages were lost) fails at
/// `challenge_timeout_ms`, so the worker is not kept out forever: it is
/// challenged again after `challenge_retry_ms` and takes tasks once it
/// passes. Reports name their round: a late one of the timed-out round, or
/// a repeat, changes nothing.
#[test]
fn a_challenge_round_that_is_never_answered_times_out() {
    let config =
        Config { challenge_interval_ms: 60_000, challenge_retry_ms: 1_000, challenge_timeout_ms: 5_000, ..config() };
    let mut core = Core::new(config);
    let w = WorkerId("w".into());
    let joined = core
        .handle(Event::WorkerConnected { worker_id: w.clone(), offer: Offer::cpu(1), trust: 0, running: vec![] }, 0);
    assert!(joined.iter().any(|a| matches!(a, Action::Challenge { .. })));
    assert!(worker(&core, "w").challenging);
    // Heartbeats keep it alive; no answer comes.
    for now in [1_000, 2_000, 3_000, 4_000] {
        core.handle(Event::Heartbeat { worker_id: w.clone(), held: vec![] }, now);
        core.handle(Event::Tick, now);
    }
    assert!(worker(&core, "w").challenging, "still within the timeout");
    core.handle(Event::Heartbeat { worker_id: w.clone(), held: vec![] }, 5_000);
    core.handle(Event::Tick, 5_000);
    let view = worker(&core, "w");
    assert!(!view.challenging && view.challenges.failed == 1 && !view.available, "{view:?}");
    core.check_invariants().unwrap();
    // The retry comes a second later.
    core.handle(Event::Heartbeat { worker_id: w.clone(), held: vec![] }, 6_000);
    let retried = core.handle(Event::Tick, 6_000);
    let round_of = |actions: &[Action]| {
        actions.iter().find_map(|a| match a {
            Action::Challenge { round, .. } => Some(*round),
            _ => None,
        })
    };
    let (first, retry) = (round_of(&joined).unwrap(), round_of(&retried).expect("a retry round"));
    assert_ne!(first, retry);
    // The timed-out round's answer, arriving late, is not taken for the retry's.
    let checked =
        |round, passed| Event::ChallengeChecked { worker_id: w.clone(), round, passed, detail: String::new() };
    core.handle(checked(first, true), 6_050);
    let view = worker(&core, "w");
    assert!(view.challenging && view.challenges.passed == 0, "{view:?}");
    assert_eq!(leased_to(&core.handle(checked(retry, true), 6_100)), Vec::<String>::new());
    assert!(worker(&core, "w").available);
    // A repeated report of the same round counts once.
    core.handle(checked(retry, false), 6_200);
    let view = worker(&core, "w");
    assert_eq!((view.challenges.passed, view.challenges.failed), (1, 1), "{view:?}");
    core.check_invariants().unwrap();
}
