//! Placement on real processes: worker offers and the market, jobs that fit
//! nowhere, live offer changes, and an owner taking a machine back mid-task.

mod common;

use std::time::{Duration, Instant};

use common::Cluster;
use iog_ledger::Amount;
use iog_proto::api::{Market, WorkerStatus};
use iog_types::JobState;

fn run_ok(cluster: &Cluster, args: &[&str]) -> String {
    let out = cluster.cli(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn io(text: &str) -> Amount {
    text.parse().unwrap()
}

/// Starts worker `idx` with these flags on top of the cluster's.
fn start_worker_with(cluster: &mut Cluster, idx: usize, flags: &[&str]) {
    let saved = std::mem::replace(&mut cluster.worker_flags, flags.iter().map(|f| (*f).to_owned()).collect());
    cluster.start_worker(idx);
    cluster.worker_flags = saved;
}

async fn market(cluster: &Cluster, query: &str) -> Market {
    serde_json::from_str(&run_ok(cluster, &["market", "search", query, "--json"])).unwrap()
}

/// Two workers in different regions at different prices: the market lists
/// what a query asks for, a malformed query says what is wrong, a job that
/// fits no offer waits and says why, and an owner's edit of the worker's
/// config file reaches the market while the worker runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_market_shows_offers_and_a_job_that_fits_nowhere_says_why() {
    let mut cluster = Cluster::start(0).await;
    start_worker_with(&mut cluster, 0, &["--region", "eu", "--price", "0.5", "--slots", "2"]);
    let config = cluster.dir.path().join("worker-1.toml");
    std::fs::write(&config, "slots = 1\n[offer]\nregion = \"us-east\"\nprice_io_per_device_hour = \"0.8\"\n").unwrap();
    start_worker_with(&mut cluster, 1, &["--config", config.to_str().unwrap()]);
    cluster.wait_for_online(2).await;
    let (eu, us) = (cluster.workers[0].0.clone(), cluster.workers[1].0.clone());

    let all = market(&cluster, "").await;
    assert_eq!(all.offers.len(), 2, "{all:?}");
    assert_eq!(all.offers[0].worker_id, eu, "cheapest first");
    let cheap_eu = market(&cluster, "region=eu price<=0.6 kind=cpu").await;
    assert_eq!(cheap_eu.offers.len(), 1);
    assert_eq!((cheap_eu.offers[0].worker_id.clone(), cheap_eu.offers[0].free), (eu.clone(), 2));
    assert!(market(&cluster, "kind=gpu").await.offers.is_empty(), "no GPU here");
    let table = run_ok(&cluster, &["market", "search", "region=us-east"]);
    assert!(table.contains("0.8 IO") && table.contains("1 device groups match 'region=us-east'"), "{table}");
    let out = cluster.cli(&["market", "search", "gpu_mem>=24 price<=cheap"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("price<=cheap") && err.contains("price must be"), "{err}");

    // A job for asia waits, and its status says why.
    let job_file = cluster.dir.path().join("asia.toml");
    std::fs::write(
        &job_file,
        "[job]\nname = \"asia\"\nworkload = \"noop\"\n\n[noop]\nn_tasks = 2\n\n[resources]\nregions = [\"asia\"]\n",
    )
    .unwrap();
    let job_id: iog_types::JobId =
        run_ok(&cluster, &["job", "submit", job_file.to_str().unwrap()]).trim().parse().unwrap();
    let status = cluster.client.job(job_id).await.unwrap();
    assert_eq!(
        status.waiting_reason.as_deref(),
        Some("no worker offers a cpu in region asia; 2 do elsewhere: eu, us-east"),
        "{status:?}"
    );
    let shown = run_ok(&cluster, &["job", "status", &job_id.to_string()]);
    assert!(shown.contains("waiting: no worker offers a cpu in region asia"), "{shown}");
    // A free job runs only on free workers; both ask a price.
    std::fs::write(&job_file, "[job]\nname = \"free\"\nworkload = \"noop\"\n\n[noop]\nn_tasks = 1\n").unwrap();
    let free_job: iog_types::JobId =
        run_ok(&cluster, &["job", "submit", job_file.to_str().unwrap()]).trim().parse().unwrap();
    let status = cluster.client.job(free_job).await.unwrap();
    assert!(
        status
            .waiting_reason
            .as_deref()
            .is_some_and(|r| r.contains("at ≤ 0 IO per device-hour; the cheapest asks 0.5 IO")),
        "{status:?}"
    );

    // The owner of the us-east worker lowers its price in the config file.
    std::fs::write(&config, "slots = 1\n[offer]\nregion = \"us-east\"\nprice_io_per_device_hour = \"0.3\"\n").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let cheap = market(&cluster, "price<=0.4").await;
        if cheap.offers.iter().any(|o| o.worker_id == us) {
            break;
        }
        assert!(Instant::now() < deadline, "the new price never reached the market:\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A broken edit is reported by the worker and changes nothing.
    std::fs::write(&config, "[offer]\nregion = \"US EAST\"\n").unwrap();
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let still = market(&cluster, "region=us-east").await;
    assert_eq!(still.offers.len(), 1, "the running offer stays");
    assert!(cluster.workers[1].1.log_text().contains("keeping the running settings"), "{}", cluster.logs());
    // Workers measure their round trip to the coordinator (at least 1 ms as reported).
    let workers = cluster.client.workers().await.unwrap();
    assert!(workers.iter().all(|w| w.rtt_ms >= 1), "{workers:?}");
}

/// The owner of the cheapest worker comes back while it runs a paid task:
/// the worker stops the task within its poll interval, the coordinator moves
/// the task to the other worker at once without counting the attempt, and
/// the submitter pays only for the run that committed, at that worker's price.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_coming_back_moves_the_task_and_the_submitter_pays_only_committed_work() {
    let mut cluster = Cluster::start_with(0, &["--faucet-max-io", "100"]).await;
    let busy_file = cluster.dir.path().join("owner-is-back");
    let config = cluster.dir.path().join("home.toml");
    std::fs::write(
        &config,
        format!(
            "owner_poll_ms = 100\n[offer]\nregion = \"eu\"\nprice_io_per_device_hour = \"1\"\n[owner]\nbusy_file = {:?}\n",
            busy_file.to_str().unwrap()
        ),
    )
    .unwrap();
    start_worker_with(&mut cluster, 0, &["--config", config.to_str().unwrap()]);
    start_worker_with(&mut cluster, 1, &["--region", "eu", "--price", "2"]);
    cluster.wait_for_online(2).await;
    let (home, dc) = (cluster.workers[0].0.clone(), cluster.workers[1].0.clone());
    let home_dir = cluster.dir.path().join("worker-0");
    let offers = run_ok(&cluster, &["worker", "offers", "--data-dir", home_dir.to_str().unwrap()]);
    assert!(offers.contains("only while its owner is away") && offers.contains("price: 1 IO"), "{offers}");

    let wallet_dir = cluster.dir.path().join("wallet");
    let wallet = ["--wallet-dir", wallet_dir.to_str().unwrap()];
    run_ok(&cluster, &[&["wallet", "faucet", "20"][..], &wallet].concat());
    let job_file = cluster.dir.path().join("long.toml");
    std::fs::write(
        &job_file,
        "[job]\nname = \"long\"\nworkload = \"noop\"\n\n[noop]\nn_tasks = 1\ntask_ms = 3000\n\n\
         [payment]\nbudget = \"10\"\nprice_io_per_hour = \"3\"\n",
    )
    .unwrap();
    let job_id: iog_types::JobId =
        run_ok(&cluster, &[&["job", "submit", job_file.to_str().unwrap()][..], &wallet].concat())
            .trim()
            .parse()
            .unwrap();
    cluster
        .wait_job(job_id, Duration::from_secs(30), |s| s.workers.iter().any(|w| w.worker_id == home && w.n_leased == 1))
        .await;

    tokio::time::sleep(Duration::from_millis(500)).await;
    std::fs::write(&busy_file, b"").unwrap();
    let owner_back = Instant::now();
    cluster
        .wait_job(job_id, Duration::from_secs(30), |s| s.workers.iter().any(|w| w.worker_id == dc && w.n_leased == 1))
        .await;
    let moved_after = owner_back.elapsed();
    println!("the task moved {} ms after the owner came back", moved_after.as_millis());
    assert!(moved_after < Duration::from_secs(3), "moving took {moved_after:?}");
    let workers: Vec<WorkerStatus> = serde_json::from_str(&run_ok(&cluster, &["worker", "list", "--json"])).unwrap();
    let home_status = workers.iter().find(|w| w.worker_id == home).unwrap();
    assert!(home_status.paused && !home_status.available, "{home_status:?}");

    let status = cluster.wait_job(job_id, Duration::from_secs(30), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    assert_eq!(tasks[0].committed_by.as_ref(), Some(&dc));
    assert_eq!(tasks[0].attempts, 1, "the yielded attempt is not counted");
    assert_eq!(tasks[0].price_io_per_hour.as_deref(), Some("2 IO"));

    // Only the committed run is paid, at its worker's ask; the owner who
    // took the machine back is paid nothing for the lost part.
    let bill = cluster.client.billing(job_id).await.unwrap();
    let charge = io("2").checked_mul_div(tasks[0].duration_ms.unwrap(), 3_600_000).unwrap();
    assert_eq!(io(&bill.spent), charge, "{bill:?}");
    assert_eq!(bill.workers.len(), 1);
    assert_eq!(bill.workers[0].worker_id, dc.0);
    assert_eq!(io(&bill.refunded).checked_add(charge).unwrap(), io("10"), "{bill:?}");

    // The owner leaves again: the worker takes tasks again.
    std::fs::remove_file(&busy_file).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let workers = cluster.client.workers().await.unwrap();
        if workers.iter().any(|w| w.worker_id == home && w.available) {
            break;
        }
        assert!(Instant::now() < deadline, "the worker did not resume:\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.coordinator.as_mut().unwrap().kill9();
    let data_dir = cluster.coordinator_dir();
    run_ok(&cluster, &["ledger", "verify", "--data-dir", data_dir.to_str().unwrap()]);
}

/// Bad offers are refused before the worker connects, with the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_offer_is_refused_with_the_fix() {
    let cluster = Cluster::start(0).await;
    let data_dir = cluster.dir.path().join("w");
    let out = cluster.cli(&["worker", "--data-dir", data_dir.to_str().unwrap(), "--region", "Europe West"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("--region must be lowercase"), "{err}");
    let config = cluster.dir.path().join("bad.toml");
    std::fs::write(&config, "[offer]\nwindows = [\"weekdays 9-5\"]\n").unwrap();
    let out = cluster.cli(&["worker", "--data-dir", data_dir.to_str().unwrap(), "--config", config.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("offer.windows") && err.contains("weekdays 9-5"), "{err}");
}

/// A gang of three runs on three distinct workers at once; when one of them
/// dies mid-run the other two are stopped, the gang holds what it can while
/// it waits, and it starts again, whole, once a third worker is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gang_runs_whole_or_not_at_all() {
    let mut cluster = Cluster::start_full(3, &[], &["--slots", "2"]).await;
    let job_file = cluster.dir.path().join("gang.toml");
    std::fs::write(
        &job_file,
        "[job]\nname = \"gang\"\nworkload = \"noop\"\nmax_attempts = 10\n\n[noop]\nn_tasks = 3\ntask_ms = 1500\n\n\
         [resources]\ngang_latency_ms_max = 1000\n",
    )
    .unwrap();
    let job_id: iog_types::JobId =
        run_ok(&cluster, &["job", "submit", job_file.to_str().unwrap()]).trim().parse().unwrap();
    let status = cluster.wait_job(job_id, Duration::from_secs(20), |s| s.tasks.leased == 3).await;
    assert_eq!(status.workers.len(), 3, "one member per worker, though each has two slots: {status:?}");
    assert!(status.workers.iter().all(|w| w.n_leased == 1));

    cluster.workers[2].1.kill9();
    // The dead member's lease lapses; the two others are stopped with it.
    cluster.wait_job(job_id, Duration::from_secs(20), |s| s.tasks.leased == 0 && s.tasks.queued == 3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = cluster.client.job(job_id).await.unwrap();
    assert_eq!(status.tasks.leased, 0, "no partial gang starts on two workers: {status:?}");
    cluster.start_worker(2);
    let status = cluster.wait_job(job_id, Duration::from_secs(60), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    let committers: std::collections::HashSet<_> = tasks.iter().map(|t| t.committed_by.clone()).collect();
    assert_eq!(committers.len(), 3, "three distinct workers committed: {tasks:?}");
}

/// Workers probe the peers the coordinator names over UDP and report
/// Vivaldi coordinates with their heartbeats; the coordinator lists them,
/// and the latency they estimate between two workers on loopback is small.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_keep_network_coordinates_from_probing_each_other() {
    let cluster = Cluster::start_with(3, &["--probe-interval-ms", "200"]).await;
    let started = std::time::Instant::now();
    let coords = loop {
        let workers = cluster.client.workers().await.unwrap();
        let settled: Vec<iog_sched::Coord> = workers
            .iter()
            .filter(|w| w.online)
            .filter_map(|w| w.coord)
            .filter(|c| c.error <= iog_core::COORD_ERROR_SETTLED)
            .collect();
        if settled.len() == 3 {
            break settled;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "coordinates did not settle: {workers:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for a in &coords {
        for b in &coords {
            // Loopback round trips count as the 1 ms floor.
            assert!(a.distance_ms(b) < 5.0, "estimated {} ms between {a:?} and {b:?}", a.distance_ms(b));
        }
    }
}
