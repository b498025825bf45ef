//! `iog-bench`: measures the coordinator's task machinery end to end.
//!
//! `iog-bench tasks` starts a real coordinator (SQLite store on a temporary
//! directory, synchronous=FULL) and in-process workers that talk to it over
//! loopback exactly as remote workers do (WebSocket stream, HTTP blobs), then
//! measures:
//! - empty-task throughput: one `noop` job of `--tasks` tasks, from submit
//!   until every task is durably committed;
//! - submit→running latency: `--latency-samples` one-task jobs submitted one
//!   after another, from the moment the submit request starts until a worker
//!   starts the task (p50, p99);
//! - paid throughput: the same job with a `[payment]` section, so each
//!   commit also posts from the escrow and pays the worker and the fee in the
//!   same transaction; the ratio to the free job is the cost of payment.
//!
//! `iog-bench heartbeats` measures the coordinator core alone at fleet
//! scale: heartbeats absorbed per second and failure-detection time (see
//! `heartbeats.rs`).
//!
//! `iog-bench placement` measures the scheduler's placement index alone at
//! several fleet sizes (see `placement.rs`).
//!
//! `iog-bench seal` measures what sealing a job costs: sealing and opening
//! throughput, key wrapping, and preparing a sealed job (see `seal.rs`).
//!
//! `iog-bench transfers` measures signed wallet-to-wallet sends through the
//! HTTP API: each answered only once its journal entry is durable, with
//! `--concurrency` requests in flight sharing each commit.

mod heartbeats;
mod placement;
mod seal;

/// What the workers of the paid run ask per device-hour (the paid job's
/// price is its cap).
const PAID_WORKER_PRICE_IO: &str = "3000";

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use hdrhistogram::Histogram;
use iog_client::Client;
use iog_coordinator::{Coordinator, CoordinatorConfig};
use iog_worker::{WorkerConfig, WorkerEvent};
use serde_json::json;

#[derive(Debug, Parser)]
#[command(name = "iog-bench", about = "Benchmarks of the iog coordinator")]
struct Cli {
    #[command(subcommand)]
    command: BenchCommand,
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// Empty-task throughput and submit→running latency.
    Tasks {
        /// Tasks in the throughput job.
        #[arg(long, default_value_t = 20_000)]
        tasks: u64,
        /// In-process workers.
        #[arg(long, default_value_t = 4)]
        workers: u32,
        /// Tasks each worker runs at once.
        #[arg(long, default_value_t = 32)]
        slots: u32,
        /// One-task jobs for the latency measurement.
        #[arg(long, default_value_t = 500)]
        latency_samples: u32,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Heartbeats absorbed per second and failure detection of the core alone, one core.
    Heartbeats {
        /// Simulated workers.
        #[arg(long, default_value_t = 100_000)]
        workers: usize,
        /// Heartbeat intervals of virtual time to measure.
        #[arg(long, default_value_t = 10)]
        rounds: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Placements per second of the scheduler's index alone, one core.
    Placement {
        /// Fleet sizes to measure, comma separated.
        #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000,1000000")]
        workers: Vec<usize>,
        /// Placements measured at each size.
        #[arg(long, default_value_t = 2_000_000)]
        placements: u64,
        /// Seed of the simulated fleet.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Sealing and opening throughput, key wrapping, and preparing a sealed job, one core.
    Seal {
        /// Seconds each measurement runs.
        #[arg(long, default_value_t = 1.0)]
        seconds: f64,
        /// Tasks of the noop job run plain and sealed end to end.
        #[arg(long, default_value_t = 400)]
        noop_tasks: u32,
        /// In-process workers for the end-to-end jobs.
        #[arg(long, default_value_t = 2)]
        workers: u32,
        /// Tasks each worker runs at once.
        #[arg(long, default_value_t = 8)]
        slots: u32,
        /// How often the submitter serves keys, comma separated (the CLI: 250).
        #[arg(long, value_delimiter = ',', default_value = "250,20")]
        key_poll_ms: Vec<u64>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Signed wallet-to-wallet sends per second through the API and the store.
    Transfers {
        /// Sends to make.
        #[arg(long, default_value_t = 20_000)]
        transfers: u32,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 64)]
        concurrency: u32,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The wallet a benchmark pays from, funded by the development faucet.
struct Payer {
    identity: iog_host::Identity,
    address: String,
}

impl Payer {
    /// `client` must act for `identity`: the faucet pays only the caller.
    async fn funded(client: &Client, identity: iog_host::Identity, io: &str) -> anyhow::Result<Payer> {
        let address = iog_ledger::Address::from_public_key(identity.public_key_bytes()).to_string();
        client.faucet(&address, io, &format!("t-{:032x}", rand::random::<u128>())).await.context("fund payer")?;
        Ok(Payer { identity, address })
    }

    /// A noop job that pays `price_io_per_hour` from this wallet, signed.
    async fn submit_paid(&self, client: &Client, name: &str, n_tasks: u64) -> anyhow::Result<iog_types::JobId> {
        let mut spec = noop_spec(name, n_tasks);
        spec["payment"] = json!({ "wallet": self.address, "budget": "1000", "price_io_per_hour": "3600" });
        let request_id = format!("t-{:032x}", rand::random::<u128>());
        let message = iog_proto::api::submit_signing_message(&request_id, spec.to_string().as_bytes());
        let signature = hex::encode(self.identity.sign(&message));
        let authorization = iog_proto::api::PaymentAuthorization { request_id, signature };
        Ok(client.submit_authorized(spec, Some(authorization)).await?.job_id)
    }
}

fn noop_spec(name: &str, n_tasks: u64) -> serde_json::Value {
    json!({ "job": { "name": name, "workload": "noop" }, "noop": { "n_tasks": n_tasks } })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
    let (tasks, workers, slots, latency_samples, json) = match Cli::parse().command {
        BenchCommand::Tasks { tasks, workers, slots, latency_samples, json } => {
            (tasks, workers, slots, latency_samples, json)
        }
        BenchCommand::Transfers { transfers, concurrency, json } => {
            return bench_transfers(transfers, concurrency, json).await;
        }
        BenchCommand::Heartbeats { workers, rounds, seed, json } => {
            let f = heartbeats::run(workers, rounds, seed);
            if json {
                println!("{}", serde_json::to_string(&f)?);
            } else {
                println!(
                    "{} workers: {} heartbeats at {:.0}/s ({:.0} ns each); joins {:.0}/s\n{} of {} silent workers declared dead after {}–{} ms (bound {} ms); slowest tick {:.2} ms",
                    f.workers,
                    f.heartbeats,
                    f.heartbeats_per_s,
                    f.ns_per_heartbeat,
                    f.join_per_s,
                    f.detected,
                    f.silent_workers,
                    f.detection_ms_min,
                    f.detection_ms_max,
                    f.detection_bound_ms,
                    f.slowest_tick_ms
                );
            }
            return Ok(());
        }
        BenchCommand::Seal { seconds, noop_tasks, workers, slots, key_poll_ms, json } => {
            let f = seal::run(seconds);
            let dir = tempfile::Builder::new().prefix("iog-bench-").tempdir().context("create temp dir")?;
            let mut config = CoordinatorConfig::new(dir.path().join("coordinator"), "127.0.0.1:0".parse()?);
            config.rate_limits.requests_per_s = 0;
            let coordinator = Coordinator::start(config).await?;
            let wallet_dir = dir.path().join("wallet");
            let identity = iog_host::Identity::load_or_create(&wallet_dir)?;
            let client = Client::connect(&coordinator.url(), coordinator.fingerprint())?.with_identity(identity);
            let handles =
                start_workers(&client, dir.path(), "worker", workers, slots, iog_ledger::Amount::ZERO).await?;
            let jobs = seal::end_to_end(&client, &wallet_dir, noop_tasks, &key_poll_ms).await?;
            for handle in handles {
                handle.shutdown().await;
            }
            coordinator.shutdown().await?;
            if json {
                println!("{}", serde_json::to_string(&serde_json::json!({ "primitives": f, "jobs": jobs }))?);
            } else {
                println!("     bytes   seal MiB/s   open MiB/s");
                for size in &f.sizes {
                    println!("{:>10} {:>12.0} {:>12.0}", size.bytes, size.seal_mib_per_s, size.open_mib_per_s);
                }
                println!("key wraps {:.0}/s, unwraps {:.0}/s", f.wraps_per_s, f.unwraps_per_s);
                println!(
                    "demo render job, {} tasks, {} input bytes: plan {:.2} ms, plan and seal {:.2} ms",
                    f.render_tasks, f.render_input_bytes, f.plan_ms, f.prepare_sealed_ms
                );
                println!("job          tasks   plain ms   sealed ms   keys served every");
                for job in &jobs {
                    println!(
                        "{:<12} {:>5} {:>10.0} {:>11.0} {:>10} ms",
                        job.job, job.tasks, job.plain_ms, job.sealed_ms, job.key_poll_ms
                    );
                }
            }
            return Ok(());
        }
        BenchCommand::Placement { workers, placements, seed, json } => {
            let figures: Vec<placement::Figures> =
                workers.iter().map(|&n| placement::run(n, placements, seed)).collect();
            if json {
                println!("{}", serde_json::to_string(&figures)?);
            } else {
                println!("workers    entries  pools  placements/s  ns/placement  ns/release  ns/search  misses");
                for f in &figures {
                    println!(
                        "{:>9} {:>9} {:>6} {:>13.0} {:>13.1} {:>11.1} {:>10.1} {:>7}",
                        f.workers,
                        f.entries,
                        f.pools,
                        f.placements_per_s,
                        f.ns_per_placement,
                        f.ns_per_release,
                        f.ns_per_search,
                        f.misses
                    );
                }
            }
            return Ok(());
        }
    };

    let dir = tempfile::Builder::new().prefix("iog-bench-").tempdir().context("create temp dir")?;
    let mut config = CoordinatorConfig::new(dir.path().join("coordinator"), "127.0.0.1:0".parse()?);
    config.core.heartbeat_interval_ms = 1_000;
    config.faucet_max = iog_ledger::Amount::from_io(1_000_000);
    // The benchmark measures the coordinator, not its rate limits.
    config.rate_limits.requests_per_s = 0;
    let coordinator = Coordinator::start(config).await?;
    // The benchmark's jobs and its paying wallet belong to one key.
    let payer_identity = iog_host::Identity::generate();
    let client = Client::connect(&coordinator.url(), coordinator.fingerprint())?.with_identity(payer_identity.clone());
    let mut handles = start_workers(&client, dir.path(), "worker", workers, slots, iog_ledger::Amount::ZERO).await?;

    // Warm up connections, the store and the allocator.
    run_job(&client, noop_spec("warm-up", 200)).await?;

    // Throughput.
    let started = Instant::now();
    let submitted = client.submit(noop_spec("throughput", tasks)).await?;
    let accepted = started.elapsed();
    // Polling a large job's status costs the coordinator a scan; 50 ms keeps
    // that out of the measurement at under 1% error on the total.
    let status = wait_done(&client, submitted.job_id, Duration::from_millis(50)).await?;
    let total = started.elapsed();
    let tasks_per_s = tasks as f64 / total.as_secs_f64();
    let run_tasks_per_s = tasks as f64 / (total - accepted).as_secs_f64();

    // Latency: every worker reports task starts; the earliest start of the
    // job's single task is when it began running.
    let mut events: Vec<_> = handles.iter().map(|h| h.subscribe()).collect();
    let mut histogram = Histogram::<u64>::new(3)?;
    for sample in 0..latency_samples {
        for rx in &mut events {
            while rx.try_recv().is_ok() {}
        }
        let sent = Instant::now();
        let submitted = client.submit(noop_spec(&format!("latency-{sample}"), 1)).await?;
        let started_at = wait_started(&mut events, submitted.job_id).await?;
        histogram.record(started_at.saturating_duration_since(sent).as_micros() as u64)?;
        wait_done(&client, submitted.job_id, Duration::from_millis(1)).await?;
    }
    let p50_us = histogram.value_at_quantile(0.50);
    let p99_us = histogram.value_at_quantile(0.99);

    // Paid throughput: the same job, each commit paid from escrow. Free
    // jobs run only on free workers and a paid job pays its worker's ask, so
    // the free workers make way for as many that ask a price.
    for handle in handles.drain(..) {
        handle.shutdown().await;
    }
    let price = PAID_WORKER_PRICE_IO.parse().expect("a valid amount");
    handles = start_workers(&client, dir.path(), "paid-worker", workers, slots, price).await?;
    let payer = Payer::funded(&client, payer_identity, "1000").await?;
    let paid_started = Instant::now();
    let paid_job = payer.submit_paid(&client, "paid-throughput", tasks).await?;
    let paid_status = wait_done(&client, paid_job, Duration::from_millis(50)).await?;
    let paid_total = paid_started.elapsed();
    let paid_tasks_per_s = tasks as f64 / paid_total.as_secs_f64();
    let bill = client.billing(paid_job).await?;

    let db_bytes = std::fs::metadata(dir.path().join("coordinator/coordinator.db")).map(|m| m.len()).unwrap_or(0);
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "tasks": tasks,
                "workers": workers,
                "slots": slots,
                "submit_accepted_ms": accepted.as_millis() as u64,
                "total_ms": total.as_millis() as u64,
                "tasks_per_s": tasks_per_s,
                "tasks_per_s_after_accept": run_tasks_per_s,
                "committed": status.tasks.committed,
                "latency_samples": latency_samples,
                "submit_to_running_p50_us": p50_us,
                "submit_to_running_p99_us": p99_us,
                "paid_total_ms": paid_total.as_millis() as u64,
                "paid_tasks_per_s": paid_tasks_per_s,
                "paid_committed": paid_status.tasks.committed,
                "paid_spent": bill.spent,
                "db_bytes": db_bytes,
            }))?
        );
    } else {
        println!("empty-task throughput ({tasks} tasks, {workers} workers x {slots} slots, SQLite synchronous=FULL)");
        println!("  submit accepted (job + tasks durable): {:.1} ms", accepted.as_secs_f64() * 1e3);
        println!(
            "  all committed after {:.1} ms: {tasks_per_s:.0} tasks/s ({run_tasks_per_s:.0} tasks/s after acceptance)",
            total.as_secs_f64() * 1e3
        );
        println!("submit→running latency ({latency_samples} one-task jobs, one at a time)");
        println!("  p50 {:.3} ms, p99 {:.3} ms", p50_us as f64 / 1e3, p99_us as f64 / 1e3);
        println!("paid throughput (the same job paying each task from escrow: a post and two transfers per commit)");
        println!(
            "  all committed and paid after {:.1} ms: {paid_tasks_per_s:.0} tasks/s, {:.2} of the free job's; {} spent",
            paid_total.as_secs_f64() * 1e3,
            paid_tasks_per_s / tasks_per_s,
            bill.spent
        );
    }
    for handle in handles {
        handle.shutdown().await;
    }
    coordinator.shutdown().await?;
    Ok(())
}

/// Starts `n` in-process workers asking `price`, with data dirs
/// `<dir>/<name>-<idx>`, and waits until that many online workers ask it.
async fn start_workers(
    client: &Client,
    dir: &std::path::Path,
    name: &str,
    n: u32,
    slots: u32,
    price: iog_ledger::Amount,
) -> anyhow::Result<Vec<iog_worker::WorkerHandle>> {
    let mut handles = Vec::new();
    for idx in 0..n {
        let mut config = WorkerConfig::new(client.url(), dir.join(format!("{name}-{idx}")));
        config.coordinator_pin = client.pin();
        config.slots = slots;
        config.terms.price_io_per_device_hour = price;
        // Many workers share this machine; each proves a little memory.
        config.terms.memory_lent_bytes = Some(64 << 20);
        handles.push(iog_worker::start(config).await?);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let joined = client
            .workers()
            .await?
            .iter()
            .filter(|w| w.online && w.offer.as_ref().is_some_and(|o| o.price_io_per_device_hour == price))
            .count();
        if joined >= n as usize {
            return Ok(handles);
        }
        if Instant::now() > deadline {
            bail!("{n} workers asking {price} did not join within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn run_job(client: &Client, spec: serde_json::Value) -> anyhow::Result<()> {
    let submitted = client.submit(spec).await?;
    wait_done(client, submitted.job_id, Duration::from_millis(10)).await.map(|_| ())
}

async fn wait_done(
    client: &Client,
    job_id: iog_types::JobId,
    poll: Duration,
) -> anyhow::Result<iog_proto::api::JobStatus> {
    loop {
        let status = client.job(job_id).await?;
        if status.state.is_final() {
            if status.state != iog_types::JobState::Done {
                bail!("job {job_id} ended {}: {:?}", status.state, status.reason);
            }
            return Ok(status);
        }
        tokio::time::sleep(poll).await;
    }
}

async fn wait_started(
    events: &mut [tokio::sync::broadcast::Receiver<WorkerEvent>],
    job_id: iog_types::JobId,
) -> anyhow::Result<Instant> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for rx in events.iter_mut() {
            while let Ok(event) = rx.try_recv() {
                if let WorkerEvent::TaskStarted { task_id, at } = event
                    && task_id.job_id == job_id
                {
                    return Ok(at);
                }
            }
        }
        if Instant::now() > deadline {
            bail!("task of job {job_id} did not start within 10 s");
        }
        tokio::time::sleep(Duration::from_micros(50)).await;
    }
}

/// Signed sends from one wallet to another, `concurrency` at a time.
async fn bench_transfers(transfers: u32, concurrency: u32, json: bool) -> anyhow::Result<()> {
    let dir = tempfile::Builder::new().prefix("iog-bench-").tempdir().context("create temp dir")?;
    let mut config = CoordinatorConfig::new(dir.path().join("coordinator"), "127.0.0.1:0".parse()?);
    config.faucet_max = iog_ledger::Amount::from_io(1_000_000);
    // The benchmark measures the coordinator, not its rate limits.
    config.rate_limits.requests_per_s = 0;
    let coordinator = Coordinator::start(config).await?;
    let payer_identity = iog_host::Identity::generate();
    let client = Client::connect(&coordinator.url(), coordinator.fingerprint())?.with_identity(payer_identity.clone());
    let payer = std::sync::Arc::new(Payer::funded(&client, payer_identity, "1000000").await?);
    let to = iog_ledger::Address::from_public_key(iog_host::Identity::generate().public_key_bytes()).to_string();
    // Requests are signed before the clock starts: the client's work is not
    // the coordinator's.
    let amount = iog_ledger::Amount::from_base_units(1_000);
    let requests: Vec<iog_proto::api::SendRequest> = (0..transfers)
        .map(|idx| {
            let request_id = format!("t-{:032x}", u128::from(idx) + 1);
            let message = iog_proto::api::send_signing_message(&payer.address, &to, amount.base_units(), &request_id);
            iog_proto::api::SendRequest {
                to: to.clone(),
                amount: amount.to_string(),
                request_id,
                signature: hex::encode(payer.identity.sign(&message)),
            }
        })
        .collect();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(requests));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (client, queue, payer) = (client.clone(), queue.clone(), payer.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let Some(request) = queue.lock().expect("queue lock").pop() else { break };
                let sent = Instant::now();
                client.send_io(&payer.address, &request).await?;
                latencies.push(sent.elapsed().as_micros() as u64);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut histogram = Histogram::<u64>::new(3)?;
    for task in tasks {
        for latency in task.await.context("join sender")?? {
            histogram.record(latency)?;
        }
    }
    let elapsed = started.elapsed();
    let per_s = f64::from(transfers) / elapsed.as_secs_f64();
    let received = client.wallet(&to).await?;
    let expected = amount.checked_mul_div(u64::from(transfers), 1).context("amount overflow")?;
    if received.available != expected.to_string() {
        bail!("the receiver holds {}, not {expected}", received.available);
    }
    let (p50_us, p99_us) = (histogram.value_at_quantile(0.5), histogram.value_at_quantile(0.99));
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "transfers": transfers,
                "concurrency": concurrency,
                "total_ms": elapsed.as_millis() as u64,
                "transfers_per_s": per_s,
                "p50_us": p50_us,
                "p99_us": p99_us,
            }))?
        );
    } else {
        println!("signed sends ({transfers}, {concurrency} in flight, SQLite synchronous=FULL)");
        println!(
            "  {per_s:.0} transfers/s durable; request latency p50 {:.3} ms, p99 {:.3} ms",
            p50_us as f64 / 1e3,
            p99_us as f64 / 1e3
        );
    }
    coordinator.shutdown().await?;
    Ok(())
}
