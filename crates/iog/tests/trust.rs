//! Hardware challenges on a live network: an honest worker process passes
//! and is verified; cheating workers (in this process, with the test-only
//! `cheats` feature) fail, take no tasks, and lose stake after three
//! failures in a row.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use iog_proto::api::WorkerStatus;
use iog_types::WorkerId;
use iog_worker::{Cheat, WorkerConfig};

fn run_ok(cluster: &Cluster, args: &[&str]) -> String {
    let out = cluster.cli(args);
    assert!(out.status.success(), "iog {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Starts a worker in this process that cheats the given way, with its data
/// dir under the cluster's and `slots` CPU slots.
async fn start_cheater(cluster: &Cluster, name: &str, cheat: Cheat, slots: u32) -> iog_worker::WorkerHandle {
    let mut config = WorkerConfig::new(cluster.url(), cluster.dir.path().join(name));
    config.coordinator_pin = Some(cluster.pin);
    config.terms.memory_lent_bytes = Some(common::WORKER_MEMORY_BYTES);
    config.cheat = Some(cheat);
    config.probe_bind = None;
    config.slots = slots;
    iog_worker::start(config).await.unwrap()
}

/// Submits a noop job of `n_tasks` tasks with these extra `[job]` lines.
fn submit_noop(cluster: &Cluster, name: &str, n_tasks: u32, job_lines: &str) -> iog_types::JobId {
    let job_file = cluster.dir.path().join(format!("{name}.toml"));
    let spec = format!("[job]\nname = \"{name}\"\nworkload = \"noop\"\n{job_lines}\n[noop]\nn_tasks = {n_tasks}\n");
    std::fs::write(&job_file, spec).unwrap();
    run_ok(cluster, &["job", "submit", job_file.to_str().unwrap()]).trim().parse().unwrap()
}

async fn wait_worker(
    cluster: &Cluster,
    worker_id: &WorkerId,
    what: &str,
    until: impl Fn(&WorkerStatus) -> bool,
) -> WorkerStatus {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let workers = cluster.client.workers().await.unwrap();
        if let Some(worker) = workers.iter().find(|w| &w.worker_id == worker_id)
            && until(worker)
        {
            return worker.clone();
        }
        assert!(Instant::now() < deadline, "{what}: {workers:?}\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn honest_workers_pass_their_challenges_and_cheaters_are_caught_and_slashed() {
    // The production allowance: the slow and short-memory cheats must miss
    // a deadline a development network would grant them.
    let flags = ["--faucet-max-io", "100", "--challenge-retry-ms", "300", "--challenge-allowance-ms", "200"];
    let mut cluster = Cluster::start_with(0, &flags).await;
    cluster.start_worker(0);
    let honest = cluster.workers[0].0.clone();
    let verified =
        wait_worker(&cluster, &honest, "the honest worker was not verified", |w| w.challenges_passed >= 1).await;
    assert_eq!((verified.trust, verified.challenges_failed), (1, 0), "verified hardware is trust 1: {verified:?}");
    let listed = run_ok(&cluster, &["worker", "list"]);
    assert!(listed.contains("1 passed, 0 failed"), "{listed}");

    // A worker that commits to a product it did not compute, with stake.
    let liar_dir = cluster.dir.path().join("liar");
    let liar = iog_host::Identity::load_or_create(&liar_dir).unwrap().worker_id();
    run_ok(&cluster, &["wallet", "faucet", "10", "--wallet-dir", liar_dir.to_str().unwrap()]);
    run_ok(&cluster, &["worker", "stake", "10", "--data-dir", liar_dir.to_str().unwrap()]);
    let liar_handle = start_cheater(&cluster, "liar", Cheat::WrongRoot, 1).await;
    // A worker that answers right, but as slowly as a weaker device would.
    let slow_handle = start_cheater(&cluster, "slow", Cheat::Slow { delay_ms: 3_000 }, 1).await;
    let slow = slow_handle.worker_id().clone();

    let caught =
        wait_worker(&cluster, &liar, "the liar was not caught three times", |w| w.challenges_failed >= 3).await;
    assert_eq!(caught.challenges_passed, 0);
    assert!(!caught.available, "a worker that failed its challenge takes no tasks: {caught:?}");
    let stake = cluster.client.stake_status(&liar.0).await.unwrap();
    assert_eq!(stake.active, "9 IO", "three failures in a row slash a tenth of the stake");
    let slow_status =
        wait_worker(&cluster, &slow, "the slow worker was not caught", |w| w.challenges_failed >= 1).await;
    assert_eq!(slow_status.challenges_passed, 0);
    // A worker that lends 64 MiB but keeps one chunk of each 1024-chunk
    // chain, rebuilding the rest as its memory walk reads it: right
    // answers, far too late (the tests' walk of 2^16 steps proves about
    // 1/250 of the memory, see TRUST.md).
    let short_handle = start_cheater(&cluster, "short", Cheat::ShortMemory { keep_every: 1024 }, 1).await;
    let short = short_handle.worker_id().clone();
    let short_status =
        wait_worker(&cluster, &short, "the short-memory worker was not caught", |w| w.challenges_failed >= 1).await;
    assert_eq!(short_status.challenges_passed, 0, "{short_status:?}");
    // Each retry would rebuild a walk again; once is proof enough.
    short_handle.shutdown().await;
    let log = cluster.coordinator.as_ref().unwrap().log_text();
    assert!(log.contains("wrong compute answer"), "the liar's failure says why:\n{log}");
    assert!(log.contains("missed the deadline"), "the slow worker's failure says why:\n{log}");
    assert!(
        log.contains("missed the deadline for the memory walk's commitment"),
        "the short-memory worker's failure says why:\n{log}"
    );

    // Nothing is placed on the cheaters; the honest worker runs the job.
    let job_id = submit_noop(&cluster, "after", 6, "");
    let status = cluster.wait_job(job_id, Duration::from_secs(30), |s| s.is_settled()).await;
    assert_eq!(status.state, iog_types::JobState::Done, "{status:?}");
    assert!(status.workers.iter().all(|w| w.worker_id == honest), "{status:?}");
    let passed_walk =
        log.lines().any(|line| line.contains("hardware challenge passed") && line.contains("memory walk"));
    assert!(passed_walk, "the honest worker passed a memory walk:\n{log}");

    liar_handle.shutdown().await;
    slow_handle.shutdown().await;
    cluster.coordinator.as_mut().unwrap().kill9();
    let data_dir = cluster.coordinator_dir();
    run_ok(&cluster, &["ledger", "verify", "--data-dir", data_dir.to_str().unwrap()]);
}

/// A worker that takes tasks and silently drops them: each lease lapses
/// after two heartbeats that do not list it, the task moves on to the honest
/// worker, and the dropper's reputation falls below 0.5 while the honest
/// one's rises above (among paid offers at one price, the honest one then
/// ranks first; `iog-core/tests/trust.rs` shows that).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_drops_tasks_loses_them_and_its_reputation() {
    let cluster = Cluster::start(1).await;
    let honest = cluster.workers[0].0.clone();
    // Four slots: the dropper takes (and drops) several tasks at once, so
    // its reputation shows more than one lapse whatever the timing.
    let dropper_handle = start_cheater(&cluster, "dropper", Cheat::DropTasks, 4).await;
    let dropper = dropper_handle.worker_id().clone();
    cluster.wait_for_online(2).await;

    let job_id = submit_noop(&cluster, "drops", 12, "max_attempts = 20\n");
    let status = cluster.wait_job(job_id, Duration::from_secs(60), |s| s.is_settled()).await;
    assert_eq!(status.state, iog_types::JobState::Done, "every task moved on from the dropper: {status:?}");
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    assert!(tasks.iter().all(|t| t.committed_by.as_ref() == Some(&honest)), "{tasks:?}");

    let workers = cluster.client.workers().await.unwrap();
    let of = |id: &WorkerId| workers.iter().find(|w| &w.worker_id == id).unwrap().clone();
    let (dropper_status, honest_status) = (of(&dropper), of(&honest));
    assert!(dropper_status.leases_lapsed >= 1, "{dropper_status:?}");
    assert!(
        dropper_status.reputation_milli < 500 && honest_status.reputation_milli > 500,
        "dropper {} and honest {}",
        dropper_status.reputation_milli,
        honest_status.reputation_milli
    );
    dropper_handle.shutdown().await;
}

/// A worker that lists its tasks in every heartbeat but never finishes
/// them holds them only until the job's `task_timeout_ms`; the tasks then
/// run on the honest worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_holds_tasks_forever_loses_them_at_the_jobs_task_timeout() {
    let cluster = Cluster::start(1).await;
    let honest = cluster.workers[0].0.clone();
    let holder_handle = start_cheater(&cluster, "holder", Cheat::HoldTasks, 4).await;
    let holder = holder_handle.worker_id().clone();
    cluster.wait_for_online(2).await;

    let job_id = submit_noop(&cluster, "held", 8, "max_attempts = 20\ntask_timeout_ms = 1500\n");
    let status = cluster.wait_job(job_id, Duration::from_secs(60), |s| s.is_settled()).await;
    assert_eq!(status.state, iog_types::JobState::Done, "{status:?}");
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    assert!(tasks.iter().all(|t| t.committed_by.as_ref() == Some(&honest)), "{tasks:?}");
    let workers = cluster.client.workers().await.unwrap();
    let holder_status = workers.iter().find(|w| w.worker_id == holder).unwrap();
    assert!(holder_status.leases_lapsed >= 1, "{holder_status:?}");
    let timed_out: Vec<_> = tasks
        .iter()
        .filter(|t| t.last_error.as_deref().is_some_and(|e| e.contains("task_timeout_ms of 1500")))
        .collect();
    assert!(!timed_out.is_empty() && timed_out.iter().all(|t| t.attempts >= 2), "{tasks:?}");
    holder_handle.shutdown().await;
}
