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
        job_id: JobId(id),
        name: format!("job{id}"),
        workload: "noop".to_owned(),
        spec_json: b"{}".to_vec(),
        max_attempts: None,
        inputs: (0..n_tasks).map(|idx| BlobId::of(&[id as u8, idx as u8])).collect(),
        requirements: Requirements { trust_min, ..Requirements::one(DeviceKind::Cpu) },
        submitter: "s".to_owned(),
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
    core.handle(Event::ChallengeChecked { worker_id: WorkerId(name.to_owned()), passed, detail }, now)
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
    let third = challenge(&mut core, "w", false, 6);
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
