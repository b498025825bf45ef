//! Commands that run a network: `iog coordinator`, `iog up`, `iog demo`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use iog_client::Client;
use iog_coordinator::{Coordinator, CoordinatorConfig};
use iog_types::JobState;
use iog_worker::{WorkerConfig, WorkerHandle};

use crate::args::{CoordinatorArgs, DemoArgs, Global, UpArgs};
use crate::display::{self, print_json};
use crate::watch::watch;

/// Largest faucet grant on the development networks of `up` and `demo`.
const DEV_FAUCET_MAX_IO: u64 = 1_000;

/// What the demo's wallet gets from the faucet, what its job holds in
/// escrow, and the price it offers per device-hour.
const DEMO_FUNDS_IO: &str = "10";
const DEMO_BUDGET_IO: &str = "5";
const DEMO_PRICE_IO_PER_HOUR: &str = "360";
/// What the demo's workers ask per device-hour, in turn: under the job's
/// price, so each task pays its worker's own ask.
const DEMO_WORKER_PRICES_IO: [&str; 3] = ["240", "300", "360"];

/// Hardware challenges come about hourly unless `--challenge-interval-ms`
/// says otherwise (and when each worker connects).
pub const CHALLENGE_INTERVAL_MS_DEFAULT: u64 = 3_600_000;
/// Memory each worker of a development network lends (and fills in its
/// hardware challenges): its workers share one machine.
pub const DEV_WORKER_MEMORY_BYTES: u64 = 64 << 20;
/// Memory a development worker that runs process jobs lends: what a
/// process task asks for by default (`process.memory_mib`).
pub const DEV_PROCESS_MEMORY_BYTES: u64 = iog_workloads::process::PROCESS_MEMORY_MIB_DEFAULT << 20;
/// A development network's challenge allowance: its workers take their
/// join challenges side by side on one machine (each claiming all of its
/// cores), so they need far more than a real host's 200 ms.
pub const DEV_CHALLENGE_ALLOWANCE_MS: u64 = 2_000;
/// Steps of a development network's memory walks: its workers walk side by
/// side on one machine, which the planned 2^20 steps (3 µs each) would not
/// reliably allow; 2^16 steps with the network allowance leave several
/// times the honest time.
pub const DEV_CHALLENGE_WALK_STEPS: u32 = 1 << 16;

/// How long the demo waits for its workers to join.
const WORKERS_JOIN_TIMEOUT: Duration = Duration::from_secs(30);

pub async fn coordinator(args: CoordinatorArgs) -> anyhow::Result<ExitCode> {
    let mut config = CoordinatorConfig::new(args.data_dir, args.listen);
    config.core = args.timings.core_config();
    config.probe_interval_ms = args.timings.probe_interval_ms;
    (config.challenge_walk_steps, config.challenge_allowance_ms) = args.timings.challenge_limits(false);
    config.fee_bps = args.fee_bps;
    config.token_ttl_ms = args.token_ttl_s * 1000;
    config.key_wait_ms = args.key_wait_s * 1000;
    config.timeouts = iog_coordinator::ConnectionTimeouts {
        header_read: Duration::from_secs(args.header_read_timeout_s),
        idle: Duration::from_secs(args.idle_timeout_s),
        ..Default::default()
    };
    config.tls = args.serving.mode();
    config.rate_limits = iog_coordinator::RateLimits {
        requests_per_s: args.rate_limit_per_s,
        requests_burst: args.rate_limit_burst,
        sessions_per_address: args.worker_sessions_per_address_max,
    };
    let min_per_device: iog_ledger::Amount = args
        .stake_min_io_per_device
        .parse()
        .map_err(|err| anyhow::anyhow!("--stake-min-io-per-device {:?}: {err}", args.stake_min_io_per_device))?;
    config.stake_rules = iog_core::StakeRules { min_per_device, cooldown_ms: args.unstake_cooldown_ms };
    let per_epoch: iog_ledger::Amount = args
        .rewards_io_per_epoch
        .parse()
        .map_err(|err| anyhow::anyhow!("--rewards-io-per-epoch {:?}: {err}", args.rewards_io_per_epoch))?;
    config.reward_rules = iog_core::RewardRules { epoch_ms: args.rewards_epoch_ms, per_epoch };
    config.faucet_max = args
        .faucet_max_io
        .map(iog_ledger::Amount::from_io)
        .map(|max| max.ok_or_else(|| anyhow::anyhow!("--faucet-max-io is too large")))
        .transpose()?;
    if config.faucet_max.is_none() && config.stake_rules.min_per_device.is_zero() {
        tracing::warn!(
            "this network has no faucet but asks workers for no stake: anyone may join with any number of \
             worker keys; a production network sets --stake-min-io-per-device"
        );
    }
    let mut coordinator = Coordinator::start(config).await?;
    println!("coordinator listening on {}", coordinator.url());
    print_pin(&coordinator);
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted; stopping");
            coordinator.shutdown().await?;
        }
        served = coordinator.wait() => served?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A coordinator and its in-process workers.
struct Network {
    coordinator: Coordinator,
    workers: Vec<WorkerHandle>,
}

impl Network {
    /// A development network in `data_dir`: the coordinator `config`
    /// describes (its data dir is `data_dir/coordinator`) with a faucet, and
    /// `n_workers` workers asking the given prices in turn.
    async fn start(
        data_dir: &Path,
        mut config: CoordinatorConfig,
        n_workers: u32,
        worker_prices: &[&str],
        wasm: bool,
        process: bool,
        gpu_software: bool,
    ) -> anyhow::Result<Network> {
        anyhow::ensure!(
            !wasm || iog_worker::WASM_BUILT_IN,
            "--wasm: this iog was built without the WebAssembly executor; build it with `--features wasm`"
        );
        config.data_dir = data_dir.join("coordinator");
        // `up` and `demo` run development networks, which have a faucet.
        config.faucet_max = iog_ledger::Amount::from_io(DEV_FAUCET_MAX_IO);
        let coordinator = Coordinator::start(config).await?;
        let mut workers = Vec::new();
        for idx in 0..n_workers {
            let mut config = WorkerConfig::new(coordinator.url(), data_dir.join(format!("worker-{idx}")));
            config.coordinator_pin = coordinator.fingerprint();
            config.terms.memory_lent_bytes = Some(DEV_WORKER_MEMORY_BYTES);
            if wasm {
                config.executors.wasm = Some(iog_worker::WASM_CAPS_DEFAULT);
            }
            config.gpu.software = gpu_software;
            if process {
                config.executors.process = Some(iog_worker::ProcessCaps::default_caps());
                config.terms.memory_lent_bytes = Some(DEV_PROCESS_MEMORY_BYTES);
            }
            if let Some(price) = worker_prices.get(idx as usize % worker_prices.len().max(1)) {
                config.terms.price_io_per_device_hour = price.parse().expect("the built-in prices are amounts");
            }
            workers.push(iog_worker::start(config).await.with_context(|| format!("start worker {idx}"))?);
        }
        Ok(Network { coordinator, workers })
    }

    async fn wait_for_workers(&self, client: &Client) -> anyhow::Result<()> {
        let started = Instant::now();
        loop {
            // Online and through the hardware challenge each takes on
            // joining, so every worker can take part from the first task.
            let online = client.workers().await?.iter().filter(|w| w.online && !w.challenging).count();
            if online >= self.workers.len() {
                return Ok(());
            }
            if started.elapsed() > WORKERS_JOIN_TIMEOUT {
                bail!(
                    "only {online} of {} workers joined and finished their hardware challenge within \
                     {WORKERS_JOIN_TIMEOUT:?}",
                    self.workers.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn shutdown(self) -> anyhow::Result<()> {
        for worker in self.workers {
            worker.shutdown().await;
        }
        self.coordinator.shutdown().await
    }
}

/// Tells how clients and workers pin the coordinator's certificate.
fn print_pin(coordinator: &Coordinator) {
    match coordinator.fingerprint() {
        Some(fingerprint) => {
            println!("certificate fingerprint {fingerprint}");
            println!("  clients and workers pin it: --coordinator {} --pin {fingerprint}", coordinator.url());
        }
        None => println!("serving plain HTTP (--insecure): for this machine only"),
    }
}

pub async fn up(args: UpArgs) -> anyhow::Result<ExitCode> {
    // A development network's local workers work for free, so jobs
    // without a [payment] section run on them.
    let mut config = CoordinatorConfig::new(args.data_dir.join("coordinator"), args.listen);
    config.core = args.timings.core_config();
    config.probe_interval_ms = args.timings.probe_interval_ms;
    (config.challenge_walk_steps, config.challenge_allowance_ms) = args.timings.challenge_limits(true);
    config.tls = args.serving.mode();
    anyhow::ensure!(
        !args.gpu_software || iog_worker::GPU_BUILT_IN,
        "--gpu-software: this iog was built without GPU kernels; build it with `cargo build --release --features gpu`"
    );
    let network =
        Network::start(&args.data_dir, config, args.workers, &[], args.wasm, args.process, args.gpu_software).await?;
    let url = network.coordinator.url();
    println!("iog is up: coordinator {url} with {} local workers", network.workers.len());
    println!("data in {}", args.data_dir.display());
    print_pin(&network.coordinator);
    let pin = network.coordinator.fingerprint().map(|f| format!(" IOG_PIN={f}")).unwrap_or_default();
    println!("try:  IOG_COORDINATOR={url}{pin} iog job submit examples/render-cornell.toml --watch");
    tokio::signal::ctrl_c().await.context("wait for interrupt")?;
    println!("stopping");
    network.shutdown().await?;
    Ok(ExitCode::SUCCESS)
}

pub async fn demo(global: &Global, args: DemoArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let temp;
    let data_dir: PathBuf = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::Builder::new().prefix("iog-demo-").tempdir().context("create temporary data dir")?;
            temp.path().to_owned()
        }
    };
    let core = iog_core::Config {
        heartbeat_interval_ms: 1_000,
        challenge_interval_ms: CHALLENGE_INTERVAL_MS_DEFAULT,
        ..iog_core::Config::default()
    };
    let listen = "127.0.0.1:0".parse().expect("valid address");
    let mut config = CoordinatorConfig::new(data_dir.join("coordinator"), listen);
    config.core = core;
    (config.challenge_walk_steps, config.challenge_allowance_ms) =
        (DEV_CHALLENGE_WALK_STEPS, DEV_CHALLENGE_ALLOWANCE_MS);
    // The demo serves TLS like any coordinator, pinned by its own workers.
    config.tls = iog_coordinator::TlsMode::SelfSigned;
    let network = Network::start(&data_dir, config, args.workers, &DEMO_WORKER_PRICES_IO, false, false, false).await?;
    // The demo pays for its render like any job: a wallet of its own, funded
    // by the development faucet, holds the budget in escrow and owns the job.
    let wallet_dir = data_dir.join("wallet");
    let wallet = iog_host::Identity::load_or_create(&wallet_dir).context("create demo wallet")?;
    let client =
        Client::connect(&network.coordinator.url(), network.coordinator.fingerprint())?.with_identity(wallet.clone());
    network.wait_for_workers(&client).await?;
    let payer = iog_ledger::Address::from_public_key(wallet.public_key_bytes()).to_string();
    let request_id = format!("t-{:032x}", rand::random::<u128>());
    client.faucet(&payer, DEMO_FUNDS_IO, &request_id).await.context("fund demo wallet")?;
    let mut spec = iog_workloads::demo_job();
    spec.payment = Some(iog_workloads::PaymentSpec {
        wallet: None,
        budget: DEMO_BUDGET_IO.to_owned(),
        price_io_per_hour: DEMO_PRICE_IO_PER_HOUR.to_owned(),
    });
    let (width, height) = spec.render.as_ref().map_or((0, 0), |r| (r.width, r.height));
    if !global.json {
        println!(
            "embedded network: coordinator {} + {} workers; rendering \"{}\" ({width}x{height})",
            network.coordinator.url(),
            network.workers.len(),
            spec.job.name
        );
    }
    let (spec, authorization) = crate::cmd_ledger::authorize_job(spec, &wallet_dir)?;
    let submitted = client.submit_authorized(spec, authorization).await.context("submit demo job")?;
    let status = watch(&client, submitted.job_id, !global.json).await?;
    if status.state != JobState::Done {
        network.shutdown().await?;
        bail!("demo job {} ended {}: {}", status.job_id, status.state, status.reason.unwrap_or_default());
    }
    let files = crate::cmd_job::download(&client, &status, &args.out).await?;
    let bill = client.billing(status.job_id).await.context("read the demo job's bill")?;
    let wall_ms = started.elapsed().as_millis() as u64;
    let job_ms = status.ended_ms.unwrap_or(status.created_ms).saturating_sub(status.created_ms);
    network.shutdown().await?;
    if global.json {
        print_json(&serde_json::json!({
            "job": status,
            "bill": bill,
            "files": files,
            "wall_ms": wall_ms,
            "data_dir": args.data_dir,
        }))?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = display::table(&["worker", "tiles", "busy", "share"]);
    for share in &status.workers {
        let percent = 100.0 * f64::from(share.n_committed) / f64::from(status.n_tasks.max(1));
        table.add_row(vec![
            share.worker_id.short().to_owned(),
            share.n_committed.to_string(),
            display::millis(share.busy_ms),
            format!("{percent:.0}%"),
        ]);
    }
    println!("{table}");
    println!(
        "{} tiles rendered in {} (whole demo {})",
        status.n_tasks,
        display::millis(job_ms),
        display::millis(wall_ms)
    );
    print!("{}", display::bill(&bill));
    for file in files {
        println!("image: {file}");
    }
    if let Some(dir) = &args.data_dir {
        println!("network state kept in {}", dir.display());
    }
    Ok(ExitCode::SUCCESS)
}
