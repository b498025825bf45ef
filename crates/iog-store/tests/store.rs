//! The store on a real SQLite file: changes survive reopening, commits are unique.

use iog_core::{Action, Change, Config, Core, Event, NewJob};
use iog_ledger::Amount;
use iog_sched::{Offer, Requirements};
use iog_store::Store;
use iog_types::{BlobId, DeviceKind, JobId, JobState, TaskId, TaskState, WorkerId};

fn persisted(actions: &[Action]) -> Vec<Change> {
    actions
        .iter()
        .filter_map(|action| match action {
            Action::Persist(change) => Some(change.clone()),
            _ => None,
        })
        .collect()
}

/// The (task, token) of every assignment in `actions`.
fn assigned(actions: &[Action]) -> Vec<(TaskId, iog_types::LeaseToken)> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Assign { task_id, token, .. } => Some((*task_id, *token)),
            _ => None,
        })
        .collect()
}

/// `worker_id` reports a run of the task under `token`.
fn succeeded(worker_id: &WorkerId, (task_id, token): (TaskId, iog_types::LeaseToken)) -> Event {
    Event::TaskSucceeded {
        worker_id: worker_id.clone(),
        task_id,
        token,
        output: BlobId::of(b"out"),
        duration_ms: 7,
        device: "cpu0".into(),
    }
}

#[tokio::test]
async fn a_restarted_core_resumes_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let inputs: Vec<BlobId> = (0..4u8).map(|i| store.blobs().put(&[i]).unwrap()).collect();
    let mut core = Core::new(Config::default());
    let worker = WorkerId("w1".into());
    let half_io = Amount::from_base_units(500_000_000);
    let offer = Offer { price_io_per_device_hour: half_io, ..Offer::cpu(2) };
    let mut changes = persisted(
        &core.handle(Event::WorkerConnected { worker_id: worker.clone(), offer, trust: 0, running: vec![] }, 10),
    );
    let requirements = Requirements {
        price_io_per_device_hour_max: Some(Amount::from_io(1).unwrap()),
        ..Requirements::one(DeviceKind::Cpu)
    };
    let job = NewJob {
        chain: None,
        job_id: JobId(99),
        name: "three".into(),
        workload: "noop".into(),
        spec_json: br#"{"job":{}}"#.to_vec(),
        max_attempts: Some(2),
        task_timeout_ms: None,
        inputs: inputs.clone(),
        requirements: requirements.clone(),
        submitter: "payer".into(),
        verify: iog_types::Verify::None,
        sealed: false,
        assets: Vec::new(),
    };
    let actions = core.handle(Event::JobSubmitted(job), 20);
    changes.extend(persisted(&actions));
    let leases = assigned(&actions);
    assert_eq!(leases.len(), 2);
    changes.extend(persisted(&core.handle(succeeded(&worker, leases[0]), 30)));
    store.apply(&changes).await.unwrap();
    store.close().await;

    let store = Store::open(dir.path()).await.unwrap();
    // What checking an arriving output reads first: the task's input and
    // its job's workload.
    assert_eq!(store.task_input(TaskId::new(JobId(99), 2)).await.unwrap(), Some((inputs[2], "noop".to_owned())));
    assert_eq!(store.task_input(TaskId::new(JobId(99), 4)).await.unwrap(), None);
    assert_eq!(store.task_input(TaskId::new(JobId(7), 0)).await.unwrap(), None);
    let snapshot = store.load_snapshot().await.unwrap();
    let restored = Core::restore(Config::default(), snapshot, 1_000).unwrap();
    restored.check_invariants().unwrap();
    assert_eq!(restored.job(JobId(99)).unwrap().n_settled, 1);
    assert_eq!(restored.task(leases[1].0).unwrap().state, TaskState::Leased);
    assert_eq!(restored.task(leases[1].0).unwrap().holder, Some(worker.clone()));
    assert_eq!(restored.task(TaskId::new(JobId(99), 3)).unwrap().state, TaskState::Queued);

    // Two leases are held (one task committed, which freed a slot for the third).
    assert_eq!(restored.devices_in_use_by("payer"), 2, "restored leases count toward their submitter's share");

    let tasks = store.tasks(JobId(99)).await.unwrap();
    assert_eq!(tasks[0].commit.as_ref().unwrap().duration_ms, 7);
    assert_eq!(tasks[0].commit.as_ref().unwrap().price_io_per_hour, half_io, "the task paid its worker's ask");
    let snapshot = store.load_snapshot().await.unwrap();
    assert_eq!(snapshot.jobs[0].requirements, requirements);
    assert_eq!(snapshot.jobs[0].submitter, "payer");
    let leased = snapshot.tasks.iter().find(|t| t.task_id == leases[1].0).unwrap();
    assert_eq!((leased.price_io_per_hour, leased.attempts), (half_io, 1));

    // The owner takes the machine back: the lease is yielded, its attempt
    // not counted, durably.
    let mut restored = restored;
    let reconnect = Event::WorkerConnected {
        worker_id: worker.clone(),
        offer: Offer { price_io_per_device_hour: half_io, ..Offer::cpu(2) },
        trust: 0,
        running: vec![iog_core::RunningTask { task_id: leases[1].0, token: leases[1].1 }],
    };
    let mut changes = persisted(&restored.handle(reconnect, 1_010));
    let pause = Event::WorkerPaused { worker_id: worker.clone(), paused: true, reason: "owner".into() };
    changes.extend(persisted(&restored.handle(pause, 1_020)));
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, Change::TaskYielded { task_id, attempts: 0, .. } if *task_id == leases[1].0))
    );
    store.apply(&changes).await.unwrap();
    let yielded = store.tasks(JobId(99)).await.unwrap().into_iter().find(|t| t.task_id == leases[1].0).unwrap();
    assert_eq!((yielded.state, yielded.attempts, yielded.holder), (TaskState::Queued, 0, None));
    assert!(yielded.last_error.unwrap().contains("owner"));
    assert_eq!(store.job(JobId(99)).await.unwrap().unwrap().state, JobState::Running);

    // A second commit of the same task is impossible at the storage level too.
    let again = Change::TaskCommitted {
        task_id: leases[0].0,
        worker_id: worker,
        token: leases[0].1,
        output: BlobId::of(b"other"),
        duration_ms: 1,
        committed_ms: 40,
        price_io_per_hour: half_io,
        device: "cpu0".into(),
        model: None,
    };
    assert!(store.apply(&[again]).await.is_err());
    assert_eq!(store.n_commits(JobId(99)).await.unwrap(), 1);
}

#[tokio::test]
async fn blobs_are_content_addressed_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let id = store.blobs().put(b"tile").unwrap();
    assert_eq!(id, BlobId::of(b"tile"));
    assert_eq!(store.blobs().get(&id).unwrap().as_deref(), Some(&b"tile"[..]));
    assert_eq!(store.blobs().put(b"tile").unwrap(), id, "putting twice is a no-op");
    let err = store.blobs().put_verified(id, b"evil").unwrap_err();
    assert!(err.to_string().contains("does not match its id"), "{err}");
    assert!(store.blobs().get(&BlobId::of(b"absent")).unwrap().is_none());
}

#[tokio::test]
async fn a_blob_counts_as_uploaded_only_by_who_sent_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let id = store.put_blob(b"tile".to_vec()).await.unwrap();
    assert!(!store.uploaded_by(id, "alice").await.unwrap(), "stored, but alice never sent it");
    store.record_upload(id, "alice").await.unwrap();
    store.record_upload(id, "alice").await.unwrap();
    assert!(store.uploaded_by(id, "alice").await.unwrap());
    assert!(!store.uploaded_by(id, "mallory").await.unwrap(), "knowing the id is not having sent it");
    let missing = iog_types::BlobId::of(b"never stored");
    store.record_upload(missing, "alice").await.unwrap();
    assert!(!store.uploaded_by(missing, "alice").await.unwrap(), "a record without the bytes does not count");
}

#[tokio::test]
async fn small_blobs_live_in_the_database_and_large_ones_in_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let small = store.put_blob(b"small".to_vec()).await.unwrap();
    assert!(!store.blobs().contains(&small), "a small blob is not a file");
    let large_bytes = vec![7u8; iog_store::INLINE_BLOB_BYTES_MAX + 1];
    let large = store.put_blob(large_bytes.clone()).await.unwrap();
    assert!(store.blobs().contains(&large), "a large blob is a file");
    store.close().await;

    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.get_blob(small).await.unwrap().as_deref(), Some(&b"small"[..]));
    assert_eq!(store.get_blob(large).await.unwrap(), Some(large_bytes));
    assert!(store.has_blob(small).await.unwrap() && store.has_blob(large).await.unwrap());
    assert!(!store.has_blob(BlobId::of(b"absent")).await.unwrap());
    // Sizes are known without reading the bytes, wherever the blob lives.
    assert_eq!(store.blob_len(small).await.unwrap(), Some(5));
    assert_eq!(store.blob_len(large).await.unwrap(), Some(iog_store::INLINE_BLOB_BYTES_MAX as u64 + 1));
    assert_eq!(store.blob_len(BlobId::of(b"absent")).await.unwrap(), None);
    let err = store.put_blob_verified(small, b"other".to_vec()).await.unwrap_err();
    assert!(err.to_string().contains("does not match its id"), "{err}");
    // Blobs that ride in a batch become durable with its changes.
    let inline = BlobId::of(b"inline");
    store.apply_with_blobs(&[], &[(inline, std::sync::Arc::from(&b"inline"[..]))]).await.unwrap();
    assert_eq!(store.get_blob(inline).await.unwrap().as_deref(), Some(&b"inline"[..]));
}

/// A worker's challenge record and reputation survive a restart: a run of
/// failed challenges goes on counting toward its slash, and its good record
/// still ranks it.
#[tokio::test]
async fn worker_records_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config { challenge_interval_ms: 60_000, ..Config::default() };
    let store = Store::open(dir.path()).await.unwrap();
    let mut core = Core::new(config.clone());
    let worker = WorkerId("w1".into());
    let mut changes = persisted(&core.handle(
        Event::WorkerConnected { worker_id: worker.clone(), offer: Offer::cpu(1), trust: 0, running: vec![] },
        0,
    ));
    for (now, passed) in [(10, true), (20, false), (30, false)] {
        let checked = Event::ChallengeChecked { worker_id: worker.clone(), round: 0, passed, detail: "test".into() };
        changes.extend(persisted(&core.handle(checked, now)));
    }
    store.apply(&changes).await.unwrap();
    store.close().await;

    let store = Store::open(dir.path()).await.unwrap();
    let snapshot = store.load_snapshot().await.unwrap();
    let mut restored = Core::restore(config, snapshot, 40).unwrap();
    let before = core.workers().into_iter().find(|w| w.worker_id == worker).unwrap();
    restored.handle(
        Event::WorkerConnected { worker_id: worker.clone(), offer: Offer::cpu(1), trust: 0, running: vec![] },
        50,
    );
    let after = restored.workers().into_iter().find(|w| w.worker_id == worker).unwrap();
    assert_eq!((after.challenges, after.reputation), (before.challenges, before.reputation));
    assert_eq!(after.challenges.failed_in_row, 2);
    // The third failure in a row, after the restart, slashes.
    let third = restored
        .handle(Event::ChallengeChecked { worker_id: worker, round: 0, passed: false, detail: "test".into() }, 60);
    assert!(third.iter().any(|a| matches!(a, Action::SlashStake { .. })), "{third:?}");
    restored.check_invariants().unwrap();
}

/// Connects each named worker with one CPU slot and nothing running.
fn connect_all(core: &mut Core, names: &[&str], now: u64) -> Vec<Change> {
    let mut changes = Vec::new();
    for name in names {
        let event = Event::WorkerConnected {
            worker_id: WorkerId((*name).into()),
            offer: Offer::cpu(1),
            trust: 0,
            running: vec![],
        };
        changes.extend(persisted(&core.handle(event, now)));
    }
    changes
}

/// Replicas, verdicts and accepted outputs survive a restart: a restored
/// core finishes a half-verified task, and the store shows who was right.
/// Handles an event, answering the comparisons it asks for as the
/// coordinator does for workloads compared byte for byte; returns the
/// changes to store.
fn handle_comparing(core: &mut Core, event: Event, now: u64) -> Vec<Change> {
    let mut changes = Vec::new();
    let mut events = vec![event];
    while let Some(event) = events.pop() {
        for action in core.handle(event, now) {
            match action {
                Action::Persist(change) => changes.push(change),
                Action::CompareOutputs { task_id, outputs, .. } => {
                    let classes = (0..outputs.len())
                        .map(|r| outputs.iter().position(|o| *o == outputs[r]).unwrap() as u8)
                        .collect();
                    events.push(Event::OutputsCompared { task_id, outputs, classes });
                }
                _ => {}
            }
        }
    }
    changes
}

#[tokio::test]
async fn replicas_and_verdicts_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let inputs: Vec<BlobId> = (0..2u8).map(|i| store.blobs().put(&[i]).unwrap()).collect();
    let config = Config { verify_key: 1, ..Config::default() };
    let mut core = Core::new(config.clone());
    let mut changes = Vec::new();
    changes.extend(connect_all(&mut core, &["a", "b", "liar"], 10));
    let job = NewJob {
        chain: None,
        job_id: JobId(7),
        name: "checked".into(),
        workload: "noop".into(),
        spec_json: br#"{"job":{}}"#.to_vec(),
        max_attempts: None,
        task_timeout_ms: None,
        inputs: inputs.clone(),
        requirements: Requirements::one(DeviceKind::Cpu),
        submitter: String::new(),
        verify: iog_types::Verify::Replicate { replicas: 2, replicas_max: 5 },
        sealed: false,
        assets: Vec::new(),
    };
    let actions = core.handle(Event::JobSubmitted(job), 20);
    changes.extend(persisted(&actions));
    let assigned: Vec<(WorkerId, TaskId, iog_types::LeaseToken)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Assign { worker_id, task_id, token, .. } => Some((worker_id.clone(), *task_id, *token)),
            _ => None,
        })
        .collect();
    assert_eq!(assigned.len(), 3, "three workers, four runs: one waits");
    // Everyone answers; the liar wrongly.
    for (worker_id, task_id, token) in &assigned {
        let output = if worker_id.0 == "liar" { BlobId::of(b"lie") } else { BlobId::of(&[task_id.task_idx as u8 % 2]) };
        let done = Event::TaskSucceeded {
            worker_id: worker_id.clone(),
            task_id: *task_id,
            token: *token,
            output,
            duration_ms: 5,
            device: "cpu0".into(),
        };
        changes.extend(persisted(&core.handle(done, 30)));
    }
    store.apply(&changes).await.unwrap();
    store.close().await;

    let store = Store::open(dir.path()).await.unwrap();
    let snapshot = store.load_snapshot().await.unwrap();
    assert_eq!(snapshot.jobs[0].verify, iog_types::Verify::Replicate { replicas: 2, replicas_max: 5 });
    let mut core = Core::restore(config, snapshot, 1_000).unwrap();
    core.check_invariants().unwrap();
    let mut changes = Vec::new();
    // The workers come back without their tasks (they restarted too).
    changes.extend(connect_all(&mut core, &["a", "b", "liar"], 1_010));
    // Run whatever is assigned until the job ends, everyone but the liar honestly.
    let mut now = 1_010;
    while core.job(JobId(7)).is_some_and(|job| !job.state.is_final()) {
        now += 100;
        assert!(now < 10_000, "the job does not end");
        let tasks: Vec<_> = (0..10).filter_map(|idx| core.task(TaskId::new(JobId(7), idx))).collect();
        for task in tasks.into_iter().filter(|t| t.state == TaskState::Leased) {
            let worker_id = task.holder.clone().unwrap();
            let output =
                if worker_id.0 == "liar" { BlobId::of(b"lie") } else { BlobId::of(&[task.task_id.task_idx as u8 % 2]) };
            let token = task.token.unwrap();
            let done = Event::TaskSucceeded {
                worker_id,
                task_id: task.task_id,
                token,
                output,
                duration_ms: 5,
                device: "cpu0".into(),
            };
            changes.extend(handle_comparing(&mut core, done, now));
        }
        // Results are in before each heartbeat, so no lease goes unconfirmed twice.
        for name in ["a", "b", "liar"] {
            let heartbeat = Event::Heartbeat { worker_id: WorkerId(name.into()), held: vec![] };
            changes.extend(handle_comparing(&mut core, heartbeat, now));
        }
        changes.extend(handle_comparing(&mut core, Event::Tick, now));
        core.check_invariants().unwrap();
    }
    store.apply(&changes).await.unwrap();
    assert_eq!(store.job(JobId(7)).await.unwrap().unwrap().state, JobState::Done);

    let tasks = store.tasks(JobId(7)).await.unwrap();
    for task_idx in 0..2u32 {
        let task = &tasks[task_idx as usize];
        assert_eq!(task.verified_output, Some(BlobId::of(&[task_idx as u8])), "{task:?}");
    }
    for task in &tasks {
        let commit = task.commit.as_ref().unwrap();
        assert_eq!(commit.verdict, Some(commit.worker_id.0 != "liar"), "{task:?}");
    }
    let progress = store.job_progress(JobId(7)).await.unwrap();
    assert_eq!(progress.n_settled, 2);
    assert_eq!(progress.wrong_by_worker, vec![(WorkerId("liar".into()), 1)]);
    let workers = store.load_snapshot().await.unwrap().workers;
    let liar = workers.iter().find(|(id, _)| id.0 == "liar").unwrap().1;
    assert_eq!((liar.reputation.results_wrong, liar.reputation.valid_streak), (1, 0));
}

/// The device of each task's committed attempt, in task order.
fn devices(tasks: &[iog_store::TaskRecord]) -> Vec<Option<String>> {
    tasks.iter().map(|task| task.commit.as_ref().and_then(|commit| commit.device.clone())).collect()
}

/// Turns the store in `data_dir` back into one from before devices were
/// recorded: no `device` column, and its migration not yet run.
async fn forget_devices(data_dir: &std::path::Path) {
    use sqlx::Connection;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(data_dir.join("coordinator.db"));
    let mut db = sqlx::SqliteConnection::connect_with(&options).await.unwrap();
    sqlx::query("ALTER TABLE commits DROP COLUMN device").execute(&mut db).await.unwrap();
    let forgotten = sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 13").execute(&mut db).await.unwrap();
    assert_eq!(forgotten.rows_affected(), 1, "migration 13 adds the device column");
    db.close().await.unwrap();
}

/// The device a worker named for a commit is stored with it like its run
/// time, survives a restart, and reads as unknown for commits stored before
/// devices were (or when the worker named none).
#[tokio::test]
async fn the_device_of_a_commit_survives_a_restart_and_an_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let inputs: Vec<BlobId> = (0..3u8).map(|i| store.blobs().put(&[i]).unwrap()).collect();
    let mut core = Core::new(Config::default());
    let worker = WorkerId("w1".into());
    let connect = Event::WorkerConnected { worker_id: worker.clone(), offer: Offer::cpu(3), trust: 0, running: vec![] };
    let mut changes = persisted(&core.handle(connect, 10));
    let job = NewJob {
        chain: None,
        job_id: JobId(5),
        name: "devices".into(),
        workload: "noop".into(),
        spec_json: br#"{"job":{}}"#.to_vec(),
        max_attempts: None,
        task_timeout_ms: None,
        inputs,
        requirements: Requirements::one(DeviceKind::Cpu),
        submitter: String::new(),
        verify: iog_types::Verify::None,
        sealed: false,
        assets: Vec::new(),
    };
    let actions = core.handle(Event::JobSubmitted(job), 20);
    changes.extend(persisted(&actions));
    let mut leases: Vec<_> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Assign { task_id, token, .. } => Some((*task_id, *token)),
            _ => None,
        })
        .collect();
    leases.sort_by_key(|(task_id, _)| task_id.task_idx);
    assert_eq!(leases.len(), 3, "{actions:?}");
    let done = |(task_id, token): (TaskId, iog_types::LeaseToken), device: &str| Event::TaskSucceeded {
        worker_id: worker.clone(),
        task_id,
        token,
        output: BlobId::of(b"out"),
        duration_ms: 9,
        device: device.into(),
    };
    changes.extend(persisted(&core.handle(done(leases[0], "gpu0"), 30)));
    changes.extend(persisted(&core.handle(done(leases[1], ""), 30)));
    assert!(
        changes.iter().any(|c| matches!(c, Change::TaskCommitted { device, .. } if device == "gpu0")),
        "the core records the device with the commit: {changes:?}"
    );
    store.apply(&changes).await.unwrap();
    store.close().await;

    let store = Store::open(dir.path()).await.unwrap();
    let tasks = store.tasks(JobId(5)).await.unwrap();
    assert_eq!(devices(&tasks), [Some("gpu0".to_owned()), None, None], "{tasks:?}");
    assert_eq!(tasks[0].commit.as_ref().unwrap().duration_ms, 9);
    let restored = Core::restore(Config::default(), store.load_snapshot().await.unwrap(), 1_000).unwrap();
    restored.check_invariants().unwrap();
    store.close().await;

    // A store of the previous schema, commits and all, is brought up to
    // date: its commits' devices are unknown, and new commits have theirs.
    forget_devices(dir.path()).await;
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(devices(&store.tasks(JobId(5)).await.unwrap()), [None, None, None]);
    let restored = Core::restore(Config::default(), store.load_snapshot().await.unwrap(), 1_000).unwrap();
    restored.check_invariants().unwrap();
    store.apply(&persisted(&core.handle(done(leases[2], "cpu0"), 40))).await.unwrap();
    let tasks = store.tasks(JobId(5)).await.unwrap();
    assert_eq!(devices(&tasks), [None, None, Some("cpu0".to_owned())], "{tasks:?}");
    assert_eq!(store.job(JobId(5)).await.unwrap().unwrap().state, JobState::Done);
}

/// A chained job stores only the tasks made so far, with the width of its
/// links, and a restarted core picks the chain up where it was: the next
/// link's inputs are asked for again, from every task of the link before.
#[tokio::test]
async fn a_chained_job_resumes_from_the_store_at_its_next_link() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let first = [store.blobs().put(b"round 0, worker 0").unwrap(), store.blobs().put(b"round 0, worker 1").unwrap()];
    let mut core = Core::new(Config::default());
    let worker = WorkerId("w1".into());
    let mut changes = persisted(&core.handle(
        Event::WorkerConnected { worker_id: worker.clone(), offer: Offer::cpu(2), trust: 0, running: vec![] },
        10,
    ));
    let job = NewJob {
        chain: Some(4),
        job_id: JobId(7),
        name: "rounds".into(),
        workload: "nbody".into(),
        spec_json: br#"{"job":{}}"#.to_vec(),
        max_attempts: Some(2),
        task_timeout_ms: None,
        inputs: first.to_vec(),
        requirements: Requirements::one(DeviceKind::Cpu),
        submitter: String::new(),
        verify: iog_types::Verify::None,
        sealed: false,
        assets: Vec::new(),
    };
    let actions = core.handle(Event::JobSubmitted(job), 20);
    changes.extend(persisted(&actions));
    let assigned: Vec<(TaskId, iog_types::LeaseToken)> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Assign { task_id, token, .. } => Some((*task_id, *token)),
            _ => None,
        })
        .collect();
    assert_eq!(assigned.len(), 2, "both tasks of the first link are placed: {actions:?}");
    let mut outputs = Vec::new();
    for (now, (task_id, token)) in (30..).zip(assigned) {
        let output = store.blobs().put(format!("{task_id} done").as_bytes()).unwrap();
        outputs.push(output);
        let commit = Event::TaskSucceeded {
            worker_id: worker.clone(),
            task_id,
            token,
            output,
            duration_ms: 7,
            device: "cpu0".into(),
        };
        let actions = core.handle(commit, now);
        changes.extend(persisted(&actions));
        let asks = actions.iter().any(|a| matches!(a, Action::ChainInput { task_idx: 2, .. }));
        assert_eq!(asks, task_id.task_idx == 1, "asked once the whole link is settled: {actions:?}");
    }
    store.apply(&changes).await.unwrap();
    store.close().await;

    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.job(JobId(7)).await.unwrap().unwrap().n_tasks, 4);
    assert_eq!(store.tasks(JobId(7)).await.unwrap().len(), 2, "only the link made so far has rows");
    let snapshot = store.load_snapshot().await.unwrap();
    assert_eq!(snapshot.jobs[0].chain_width, 2);
    let mut restored = Core::restore(Config::default(), snapshot, 1_000).unwrap();
    restored.check_invariants().unwrap();
    let actions = restored.handle(Event::Tick, 1_001);
    let asked = actions.iter().find_map(|a| match a {
        Action::ChainInput { task_idx, previous, .. } => Some((*task_idx, previous.clone())),
        _ => None,
    });
    assert_eq!(asked, Some((2, vec![(first[0], outputs[0]), (first[1], outputs[1])])));
    // The next link is made and stored as it comes.
    let next = vec![store.blobs().put(b"round 1, worker 0").unwrap(), store.blobs().put(b"round 1, worker 1").unwrap()];
    let actions =
        restored.handle(Event::ChainInputReady { job_id: JobId(7), task_idx: 2, inputs: next.clone() }, 1_002);
    store.apply(&persisted(&actions)).await.unwrap();
    let tasks = store.tasks(JobId(7)).await.unwrap();
    assert_eq!((tasks.len(), tasks[2].input, tasks[3].input), (4, next[0], next[1]));
}

#[tokio::test]
async fn the_model_a_replica_ran_on_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let input = store.blobs().put(b"in").unwrap();
    let mut core = Core::new(Config::default());
    let worker = WorkerId("w1".into());
    let mut offer = Offer::cpu(1);
    offer.groups[0].model = "EPYC 7B13".into();
    let mut changes = persisted(
        &core.handle(Event::WorkerConnected { worker_id: worker.clone(), offer, trust: 0, running: vec![] }, 10),
    );
    let requirements = Requirements { replicas_same_model: true, ..Requirements::one(DeviceKind::Cpu) };
    let job = NewJob {
        chain: None,
        job_id: JobId(5),
        name: "alike".into(),
        workload: "noop".into(),
        spec_json: br#"{"job":{}}"#.to_vec(),
        max_attempts: None,
        task_timeout_ms: None,
        inputs: vec![input],
        requirements: requirements.clone(),
        submitter: "s".into(),
        verify: iog_types::Verify::Replicate { replicas: 2, replicas_max: 5 },
        sealed: false,
        assets: Vec::new(),
    };
    let actions = core.handle(Event::JobSubmitted(job), 20);
    changes.extend(persisted(&actions));
    let lease = assigned(&actions)[0];
    changes.extend(persisted(&core.handle(succeeded(&worker, lease), 30)));
    store.apply(&changes).await.unwrap();
    store.close().await;

    let store = Store::open(dir.path()).await.unwrap();
    let snapshot = store.load_snapshot().await.unwrap();
    assert_eq!(snapshot.jobs[0].requirements, requirements);
    let models: Vec<Option<&str>> = snapshot.tasks.iter().map(|t| t.model.as_deref()).collect();
    assert_eq!(models, [Some("EPYC 7B13"), None], "the committed replica's model, the waiting one's none");
}
