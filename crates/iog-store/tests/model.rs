//! The SQLite store and the simulator's model of it must mean the same
//! thing: after the same changes, both give the same snapshot.

use iog_core::{Action, Change, Config, Core, Event, NewJob, RunningTask, Snapshot};
use iog_ledger::Amount;
use iog_sched::{Offer, Requirements};
use iog_sim::DurableModel;
use iog_store::Store;
use iog_types::{BlobId, JobId, LeaseToken, TaskId, WorkerId};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn sorted(mut snapshot: Snapshot) -> Snapshot {
    snapshot.jobs.sort_by_key(|job| job.job_id);
    snapshot.tasks.sort_by_key(|task| task.task_id);
    snapshot
}

#[tokio::test]
async fn sqlite_and_the_model_agree_after_random_histories() {
    let mut n_yielded = 0;
    for seed in 0..20u64 {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let mut model = DurableModel::default();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let config = Config { max_attempts_default: 3, heartbeat_interval_ms: 100, ..Config::default() };
        let mut core = Core::new(config);
        let mut leases: Vec<(WorkerId, TaskId, LeaseToken)> = Vec::new();
        let mut now = 0;
        for step in 0..300 {
            now += rng.random_range(0..60);
            let worker_id = WorkerId(format!("w{}", rng.random_range(0..3)));
            // Workers ask varying prices, so leases and commits carry them.
            let offer = Offer {
                price_io_per_device_hour: Amount::from_base_units(rng.random_range(0..1_000)),
                ..Offer::cpu(2)
            };
            let event = match rng.random_range(0..12) {
                0 => Event::WorkerConnected { worker_id, offer, trust: 0, running: vec![] },
                1 if step < 200 => Event::JobSubmitted(NewJob {
                    chain: None,
                    job_id: JobId(rng.random::<u64>().max(1)),
                    name: "m".into(),
                    workload: "noop".into(),
                    spec_json: b"{}".to_vec(),
                    max_attempts: None,
                    task_timeout_ms: None,
                    inputs: (0..rng.random_range(1..6u32)).map(|i| BlobId::of(&i.to_le_bytes())).collect(),
                    requirements: Requirements {
                        count: rng.random_range(1..=2),
                        price_io_per_device_hour_max: rng.random_bool(0.5).then(|| Amount::from_base_units(800)),
                        ..Requirements::default()
                    },
                    submitter: ["", "payer-a", "payer-b"][rng.random_range(0..3)].to_owned(),
                    verify: iog_types::Verify::None,
                    sealed: false,
                    assets: Vec::new(),
                }),
                2..=4 if !leases.is_empty() => {
                    let (worker_id, task_id, token) = leases.swap_remove(rng.random_range(0..leases.len()));
                    Event::TaskSucceeded {
                        worker_id,
                        task_id,
                        token,
                        output: BlobId::of(b"out"),
                        duration_ms: 3,
                        device: "cpu0".into(),
                    }
                }
                5 if !leases.is_empty() => {
                    let (worker_id, task_id, token) = leases.swap_remove(rng.random_range(0..leases.len()));
                    Event::TaskFailed { worker_id, task_id, token, error: "x".into() }
                }
                6 => {
                    let held =
                        leases.iter().filter(|l| l.0 == worker_id).map(|l| RunningTask { task_id: l.1, token: l.2 });
                    Event::Heartbeat { held: held.collect(), worker_id }
                }
                // The owner takes the machine back (its leases are yielded) or is done with it.
                7 => Event::WorkerPaused { worker_id, paused: rng.random_bool(0.6), reason: "owner".into() },
                8 => Event::OfferChanged { worker_id, offer },
                _ => Event::Tick,
            };
            let actions = core.handle(event, now);
            let changes: Vec<Change> = actions
                .iter()
                .filter_map(|a| match a {
                    Action::Persist(change) => Some(change.clone()),
                    _ => None,
                })
                .collect();
            for action in &actions {
                if let Action::Assign { worker_id, task_id, token, .. } = action {
                    leases.push((worker_id.clone(), *task_id, *token));
                }
            }
            n_yielded += changes.iter().filter(|c| matches!(c, Change::TaskYielded { .. })).count();
            model.apply(&changes).unwrap_or_else(|v| panic!("seed {seed} step {step}: the model refused: {v}"));
            store.apply(&changes).await.unwrap();
        }
        let from_sqlite = sorted(store.load_snapshot().await.unwrap());
        let from_model = sorted(model.snapshot());
        assert_eq!(from_sqlite, from_model, "seed {seed}");
    }
    assert!(n_yielded > 0, "owners took machines back while tasks ran");
}
