//! Chaos on real processes: a render job runs on a coordinator and three
//! worker processes while a seeded schedule kills workers and the
//! coordinator with SIGKILL at random moments and starts them again.
//! The job is paid from a wallet's escrow. Afterwards the store must show
//! every task committed exactly once, the image must be pixel-identical to a
//! single-process render, and `iog ledger verify` must find every committed
//! task paid exactly once and the rest of the budget refunded.
//!
//! `cargo test` runs 2 trials. The long run:
//! `IOG_CHAOS_TRIALS=100 cargo test --release -p iog --test chaos -- --nocapture`
//! (`IOG_CHAOS_SEED` picks the first schedule; a trial's schedule depends
//! only on its seed, the moments it hits depend on the machine).

mod common;

use std::time::{Duration, Instant};

use common::{Cluster, reference_render, write_render_job};
use iog_types::JobState;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const TRIAL_TIMEOUT: Duration = Duration::from_secs(180);
/// Kills per trial; after the last one the job is left to finish.
const KILLS_MAX: u32 = 6;

#[derive(Debug, Default)]
struct Trial {
    worker_kills: u32,
    worker_wipes: u32,
    coordinator_kills: u32,
    tasks: usize,
    retried_tasks: usize,
    took: Duration,
}

async fn trial(seed: u64) -> Trial {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // Workers ask different prices under the job's cap of 36 IO per hour.
    let mut cluster = Cluster::start_full(3, &["--faucet-max-io", "100"], &["--price", "30"]).await;
    let job_file = write_render_job(cluster.dir.path(), 128, 96, 16, 320);
    let mut text = std::fs::read_to_string(&job_file).unwrap();
    text.push_str("\n[payment]\nbudget = \"40\"\nprice_io_per_hour = \"36\"\n");
    std::fs::write(&job_file, text).unwrap();
    let wallet_dir = cluster.dir.path().join("wallet");
    let wallet = ["--wallet-dir", wallet_dir.to_str().unwrap()];
    for args in [&["wallet", "faucet", "50"][..], &["job", "submit", job_file.to_str().unwrap()][..]] {
        let out = cluster.cli(&[args, &wallet].concat());
        assert!(out.status.success(), "trial {seed}: {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let job_id: iog_types::JobId = {
        let out = cluster.cli(&["job", "list", "--json"]);
        let jobs: Vec<iog_proto::api::JobStatus> = serde_json::from_slice(&out.stdout).unwrap();
        jobs[0].job_id
    };
    let started = Instant::now();
    let mut report = Trial::default();
    let mut kills = 0;
    loop {
        let status = cluster.client.job(job_id).await.ok();
        if status.as_ref().is_some_and(|s| s.is_settled()) {
            break;
        }
        assert!(started.elapsed() < TRIAL_TIMEOUT, "trial {seed}: job unfinished:\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..500))).await;
        if kills >= KILLS_MAX {
            continue;
        }
        match rng.random_range(0..4) {
            0 | 1 => {
                let idx = rng.random_range(0..3);
                let wipe = rng.random_bool(0.3);
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..300))).await;
                cluster.restart_worker(idx, wipe);
                report.worker_kills += 1;
                report.worker_wipes += u32::from(wipe);
                kills += 1;
            }
            2 => {
                cluster.coordinator.as_mut().unwrap().kill9();
                tokio::time::sleep(Duration::from_millis(rng.random_range(50..800))).await;
                cluster.start_coordinator().await;
                report.coordinator_kills += 1;
                kills += 1;
            }
            _ => {}
        }
    }
    let status = cluster.client.job(job_id).await.unwrap();
    assert_eq!(status.state, JobState::Done, "trial {seed}: {status:?}\n{}", cluster.logs());
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    // Every task exactly once in the store.
    let db = cluster.coordinator_dir().join("coordinator.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display())).await.unwrap();
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT task_idx, COUNT(*) FROM commits WHERE job_id = ? GROUP BY task_idx")
            .bind(job_id.0 as i64)
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert_eq!(rows.len(), tasks.len(), "trial {seed}: every task has a commit");
    assert!(rows.iter().all(|(_, n)| *n == 1), "trial {seed}: a task was committed twice");
    // The result is right.
    let out_dir = cluster.dir.path().join("out");
    let out = cluster.cli(&["job", "result", &job_id.to_string(), "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, _, rgb) = common::decode_png(&std::fs::read(out_dir.join("image.png")).unwrap());
    let (_, _, expected) = reference_render(&job_file);
    assert!(rgb == expected, "trial {seed}: the image differs from the single-process render");
    // Money: every commit paid once from the escrow, the rest refunded, the
    // journal intact across every kill.
    let bill = cluster.client.billing(job_id).await.unwrap();
    assert_eq!(bill.held, "0 IO", "trial {seed}: {bill:?}");
    cluster.coordinator.as_mut().unwrap().kill9();
    let data_dir = cluster.coordinator_dir();
    let out = cluster.cli(&["ledger", "verify", "--data-dir", data_dir.to_str().unwrap()]);
    let verified = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "trial {seed}: {}", String::from_utf8_lossy(&out.stderr));
    assert!(verified.contains("every committed task of 1 ended paid jobs paid exactly once"), "{verified}");
    report.tasks = tasks.len();
    report.retried_tasks = tasks.iter().filter(|t| t.attempts > 1).count();
    report.took = started.elapsed();
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_kills_of_workers_and_the_coordinator_lose_nothing() {
    let trials: u64 = std::env::var("IOG_CHAOS_TRIALS").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let first: u64 = std::env::var("IOG_CHAOS_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut total = Trial::default();
    for seed in first..first + trials {
        let report = trial(seed).await;
        println!("trial {seed}: {report:?}");
        total.worker_kills += report.worker_kills;
        total.worker_wipes += report.worker_wipes;
        total.coordinator_kills += report.coordinator_kills;
        total.tasks += report.tasks;
        total.retried_tasks += report.retried_tasks;
        total.took += report.took;
    }
    println!("{trials} trials: {total:?}");
    assert!(total.worker_kills + total.coordinator_kills > 0, "the schedule killed something");
}
