//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Default coordinator URL for client commands and workers.
pub const DEFAULT_COORDINATOR: &str = "https://127.0.0.1:7070";

#[derive(Debug, Parser)]
#[command(name = "iog", version, about = "The Internet of GPUs: run jobs on GPUs owned by many people")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command understands.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Coordinator to talk to.
    #[arg(long, global = true, env = "IOG_COORDINATOR", default_value = DEFAULT_COORDINATOR)]
    pub coordinator: String,
    /// The fingerprint of the coordinator's certificate (`sha256:…`, printed
    /// when it starts and kept in its data dir as coordinator.pin). Needed
    /// for a self-signed coordinator; without it the certificate must come
    /// from a public authority.
    #[arg(long, global = true, env = "IOG_PIN")]
    pub pin: Option<iog_client::Fingerprint>,
    /// Print machine-readable JSON instead of tables and progress bars.
    #[arg(long, global = true)]
    pub json: bool,
    /// Where your wallet's key lives. It proves who you are to the
    /// coordinator (your jobs, results and wallet are yours alone) and signs
    /// your payments; created on first use.
    #[arg(long, global = true, env = "IOG_WALLET_DIR", default_value_os_t = default_data_dir("wallet"))]
    pub wallet_dir: PathBuf,
}

impl Global {
    /// A client that acts for the wallet in `--wallet-dir`, creating its
    /// key when there is none yet.
    pub fn authed_client(&self) -> anyhow::Result<iog_client::Client> {
        use anyhow::Context;
        let identity = iog_host::Identity::load_or_create(&self.wallet_dir)
            .with_context(|| format!("load the wallet key in {}", self.wallet_dir.display()))?;
        Ok(self.client()?.with_identity(identity))
    }

    /// A client for the coordinator, checking its certificate against `--pin`.
    pub fn client(&self) -> anyhow::Result<iog_client::Client> {
        Ok(iog_client::Client::connect(&self.coordinator, self.pin)?)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an embedded network (a coordinator and workers in this process),
    /// render a scene on it, and write the image.
    Demo(DemoArgs),
    /// Run a coordinator and local workers in this process until interrupted.
    Up(UpArgs),
    /// Run a coordinator.
    Coordinator(CoordinatorArgs),
    /// Run a worker, or inspect workers.
    Worker(WorkerArgs),
    /// Submit and follow jobs.
    Job(JobArgs),
    /// Keep a wallet and move $IO.
    Wallet(WalletArgs),
    /// Audit the $IO ledger.
    Ledger(LedgerArgs),
    /// Search what online workers offer.
    Market(MarketArgs),
    /// Run WebAssembly (WASI) modules in the worker's sandbox, on this
    /// machine (needs a build with `--features wasm`).
    Wasm(WasmArgs),
}

#[derive(Debug, Args)]
pub struct WasmArgs {
    #[command(subcommand)]
    pub command: WasmCommand,
}

#[derive(Debug, Subcommand)]
pub enum WasmCommand {
    /// Run one task of a module here, exactly as a worker would: inputs
    /// read-only at /in, output files from /out, a still clock, seeded
    /// random bytes, no network, and the given limits.
    Run(WasmRunArgs),
}

#[derive(Debug, Args)]
pub struct WasmRunArgs {
    /// The module: a `.wasm` file (WASI preview 1 command) or its text format.
    pub module: PathBuf,
    /// Arguments the module gets after its name (put them after `--`).
    #[arg(last = true)]
    pub args: Vec<String>,
    /// An input file, seen by the module as /in/<its file name>; repeatable.
    #[arg(long = "input", value_name = "FILE")]
    pub inputs: Vec<PathBuf>,
    /// An environment variable for the module, as KEY=VALUE; repeatable.
    #[arg(long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// Where to write the files the module leaves in /out (its standard
    /// output is printed).
    #[arg(long, default_value = "wasm-out")]
    pub out: PathBuf,
    /// The task's index (IOG_TASK_INDEX) and the job's task count (IOG_N_TASKS).
    #[arg(long, default_value_t = 0)]
    pub task_index: u32,
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub tasks: u32,
    /// Instructions the run may execute (a job's wasm.fuel).
    #[arg(long, default_value_t = iog_workloads::wasm::WASM_FUEL_DEFAULT,
        value_parser = clap::value_parser!(u64).range(1..=iog_workloads::wasm::WASM_FUEL_MAX))]
    pub fuel: u64,
    /// Linear memory the module may have, in MiB (a job's wasm.memory_mib).
    #[arg(long, default_value_t = iog_workloads::wasm::WASM_MEMORY_MIB_DEFAULT,
        value_parser = clap::value_parser!(u64).range(1..=iog_workloads::wasm::WASM_MEMORY_MIB_MAX))]
    pub memory_mib: u64,
    /// Wall-clock limit of the run (a job's wasm.timeout_ms).
    #[arg(long, default_value_t = iog_workloads::wasm::WASM_TIMEOUT_MS_DEFAULT,
        value_parser = clap::value_parser!(u64).range(1..=iog_workloads::wasm::WASM_TIMEOUT_MS_MAX))]
    pub timeout_ms: u64,
    /// Most MiB the module may write, files in /out and standard output
    /// together (a job's wasm.output_mib).
    #[arg(long, default_value_t = iog_workloads::wasm::WASM_OUTPUT_MIB_DEFAULT,
        value_parser = clap::value_parser!(u64).range(1..=iog_workloads::wasm::WASM_OUTPUT_MIB_MAX))]
    pub output_mib: u64,
}

#[derive(Debug, Args)]
pub struct MarketArgs {
    #[command(subcommand)]
    pub command: MarketCommand,
}

#[derive(Debug, Subcommand)]
pub enum MarketCommand {
    /// List device groups of online workers matching a query, cheapest
    /// first: terms like `gpu_mem>=24 price<=0.8 region=eu,us-east
    /// kind=gpu count>=2 model=H100 trust>=1` (empty: everything).
    Search {
        /// The query; quote it as one argument.
        #[arg(default_value = "")]
        query: String,
    },
}

#[derive(Debug, Args)]
pub struct WalletArgs {
    #[command(subcommand)]
    pub command: WalletCommand,
}

#[derive(Debug, Subcommand)]
pub enum WalletCommand {
    /// Create this machine's wallet key (or show the existing one) and print its address.
    New,
    /// Show a wallet's balance (this machine's wallet unless an address is given).
    Balance {
        #[arg(long)]
        address: Option<String>,
    },
    /// Print a bearer token for this wallet (signs a fresh nonce of the
    /// coordinator's), for scripts that call the REST API with curl:
    /// `Authorization: Bearer <token>`.
    Token,
    /// Get $IO from a development network's faucet.
    Faucet {
        /// How much, e.g. 5 or 0.25.
        amount: String,
    },
    /// Send $IO from this machine's wallet to another, signed with its key.
    Send {
        /// The receiving wallet's address.
        to: String,
        /// How much, e.g. 5 or 0.25.
        amount: String,
    },
    /// List the ledger operations that moved a wallet's $IO, newest first.
    History {
        /// Another wallet than this machine's.
        #[arg(long)]
        address: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    pub command: LedgerCommand,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Replay the journal from a coordinator's store and check every rule:
    /// the hash chain, conservation, no negative balances, and every
    /// committed task of a paid job paid exactly once.
    Verify {
        /// Read the store in this coordinator data dir (the coordinator may
        /// be stopped); without it, ask the running coordinator (--coordinator).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// Core timings shared by the commands that run a coordinator.
#[derive(Debug, Clone, Args)]
pub struct Timings {
    /// How often workers heartbeat.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(10..=600_000))]
    pub heartbeat_interval_ms: u64,
    /// Heartbeats a worker may miss before it is declared dead and its leases lapse.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub missed_heartbeats: u32,
    /// First retry backoff of a failed task; doubles with each attempt.
    #[arg(long, default_value_t = 250)]
    pub retry_backoff_ms: u64,
    /// How often each worker is named a few peers to probe for its network
    /// coordinate (used to keep gangs close together); 0 turns probing off.
    #[arg(long, default_value_t = iog_coordinator::PROBE_INTERVAL_MS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(0..=3_600_000))]
    pub probe_interval_ms: u64,
    /// About how often each worker takes a hardware challenge, besides the
    /// one when it connects (each wait drawn between half and one and a
    /// half times this); 0 turns challenges off.
    #[arg(long, default_value_t = crate::cmd_network::CHALLENGE_INTERVAL_MS_DEFAULT,
          value_parser = clap::value_parser!(u64).range(0..=7 * 24 * 3_600_000))]
    pub challenge_interval_ms: u64,
    /// How long after a failed challenge the next one comes.
    #[arg(long, default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=24 * 3_600_000))]
    pub challenge_retry_ms: u64,
    /// How long a task may run when its job sets no `task_timeout_ms`;
    /// past it the lease lapses against its worker and the task is tried
    /// elsewhere. 0: no limit.
    #[arg(long, default_value_t = iog_core::TASK_TIMEOUT_DEFAULT_MS / 1000,
          value_parser = clap::value_parser!(u64).range(0..=7 * 24 * 3600))]
    pub task_timeout_default_s: u64,
    /// Steps of the memory challenge's walk. Fewer tolerate hosts that run
    /// several workers side by side, and prove less (docs/TRUST.md).
    /// Default 1048576; 65536 for `up`, whose workers share one machine.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1024..=i64::from(iog_trust::memory::PROBES_MAX)))]
    pub challenge_walk_steps: Option<u32>,
    /// Added to every challenge deadline on top of twice the worker's round
    /// trip. More tolerates busy or shared hosts and proves less
    /// (docs/TRUST.md). Default 200; 2000 for `up`.
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub challenge_allowance_ms: Option<u64>,
}

impl Timings {
    /// The memory walk's steps and the challenge allowance: as given, or
    /// the defaults of a real network, or of a development one (`dev`),
    /// whose workers share one machine.
    pub fn challenge_limits(&self, dev: bool) -> (u32, u64) {
        let (steps, allowance_ms) = match dev {
            true => (crate::cmd_network::DEV_CHALLENGE_WALK_STEPS, crate::cmd_network::DEV_CHALLENGE_ALLOWANCE_MS),
            false => (iog_trust::claim::PROBES_PLAN, iog_coordinator::CHALLENGE_ALLOWANCE_MS_DEFAULT),
        };
        (self.challenge_walk_steps.unwrap_or(steps), self.challenge_allowance_ms.unwrap_or(allowance_ms))
    }

    pub fn core_config(&self) -> iog_core::Config {
        iog_core::Config {
            heartbeat_interval_ms: self.heartbeat_interval_ms,
            missed_heartbeats_max: self.missed_heartbeats,
            retry_backoff_base_ms: self.retry_backoff_ms,
            challenge_interval_ms: self.challenge_interval_ms,
            challenge_retry_ms: self.challenge_retry_ms,
            task_timeout_default_ms: self.task_timeout_default_s * 1000,
            ..iog_core::Config::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the network's state here (a temporary directory otherwise).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Workers to start.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub workers: u32,
    /// Where to write the rendered image.
    #[arg(long, default_value = "iog-demo-output")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where the coordinator and workers keep their state.
    #[arg(long, default_value_os_t = default_data_dir("up"))]
    pub data_dir: PathBuf,
    /// Address to serve on.
    #[arg(long, default_value = iog_coordinator::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    /// Local workers to start.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(0..=256))]
    pub workers: u32,
    /// Let the local workers run `wasm` jobs (users' WebAssembly modules);
    /// needs an iog built with `--features wasm`.
    #[arg(long)]
    pub wasm: bool,
    /// Let the local workers run `process` and `blender` jobs (users'
    /// commands under bubblewrap, which must be installed); each lends
    /// 1 GiB of memory to them.
    #[arg(long)]
    pub process: bool,
    /// Let the local workers offer software GPU adapters (Mesa's llvmpipe)
    /// as GPUs and run GPU kernels on them, to try jobs that ask for a GPU
    /// on a machine without one; needs an iog built with `--features gpu`.
    #[arg(long)]
    pub gpu_software: bool,
    #[command(flatten)]
    pub timings: Timings,
    #[command(flatten)]
    pub serving: Serving,
}

/// How a coordinator serves: TLS (its own certificate, or a self-signed
/// one made on first start), or plain HTTP on loopback.
#[derive(Debug, Clone, Args)]
pub struct Serving {
    /// The certificate chain to serve (PEM), with --tls-key. Without both,
    /// the coordinator makes a self-signed certificate in its data dir and
    /// prints the fingerprint clients pin.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve plain HTTP instead of TLS: only on a loopback address, for demos.
    #[arg(long, conflicts_with_all = ["tls_cert", "tls_key"])]
    pub insecure: bool,
}

impl Serving {
    pub fn mode(&self) -> iog_coordinator::TlsMode {
        match (&self.tls_cert, &self.tls_key, self.insecure) {
            (_, _, true) => iog_coordinator::TlsMode::Insecure,
            (Some(cert), Some(key), false) => iog_coordinator::TlsMode::Files { cert: cert.clone(), key: key.clone() },
            _ => iog_coordinator::TlsMode::SelfSigned,
        }
    }
}

#[derive(Debug, Args)]
pub struct CoordinatorArgs {
    /// Where the store lives.
    #[arg(long, default_value_os_t = default_data_dir("coordinator"))]
    pub data_dir: PathBuf,
    /// Address to serve the API and the worker stream on.
    #[arg(long, default_value = iog_coordinator::DEFAULT_LISTEN)]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub timings: Timings,
    #[command(flatten)]
    pub serving: Serving,
    /// Turn on the development faucet, granting at most this many IO per
    /// request. Off by default: production networks have no faucet.
    #[arg(long)]
    pub faucet_max_io: Option<u64>,
    /// The network's share of every task payment, in basis points (250 = 2.5 %).
    #[arg(long, default_value_t = iog_coordinator::DEFAULT_FEE_BPS,
          value_parser = clap::value_parser!(u32).range(0..=iog_core::FEE_BPS_MAX as i64))]
    pub fee_bps: u32,
    /// Requests a second one address, and one wallet, may make (sustained);
    /// past it the coordinator answers 429 rate_limited. 0 turns the limit
    /// off (for a coordinator behind a proxy that limits).
    #[arg(long, default_value_t = iog_coordinator::REQUESTS_PER_S_DEFAULT)]
    pub rate_limit_per_s: u32,
    /// Requests one address or wallet may make at once after a quiet spell.
    #[arg(long, default_value_t = iog_coordinator::REQUESTS_BURST_DEFAULT,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub rate_limit_burst: u32,
    /// Worker sessions one address may hold open at once (0: no cap).
    #[arg(long, default_value_t = iog_coordinator::SESSIONS_PER_ADDRESS_DEFAULT)]
    pub worker_sessions_per_address_max: u32,
    /// How long a bearer token issued against a wallet's signature lives
    /// (clients renew theirs by signing a fresh nonce).
    #[arg(long, default_value_t = iog_coordinator::TOKEN_TTL_MS_DEFAULT / 1000,
          value_parser = clap::value_parser!(u64).range(1..=7 * 24 * 3600))]
    pub token_ttl_s: u64,
    /// How long a worker holding a task of a sealed job waits for the
    /// submitter's key before the coordinator takes the task back (the
    /// attempt counts against the job, never the worker).
    #[arg(long, default_value_t = iog_coordinator::KEY_WAIT_MS_DEFAULT / 1000,
          value_parser = clap::value_parser!(u64).range(1..=iog_coordinator::KEY_WAIT_MS_MAX / 1000))]
    pub key_wait_s: u64,
    /// How long a client has to send a request's headers, counted from when
    /// it connects or finishes its last request.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_s: u64,
    /// A connection with no byte read or written for this long is closed (a
    /// worker session may stay quiet for twice its heartbeat allowance,
    /// if that is more).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub idle_timeout_s: u64,
    /// Stake (in IO) a worker must hold per device it offers to be admitted.
    #[arg(long, default_value = "0")]
    pub stake_min_io_per_device: String,
    /// How long unstaked IO stays slashable before it reaches the worker's wallet.
    #[arg(long, default_value_t = iog_core::DEFAULT_UNSTAKE_COOLDOWN_MS)]
    pub unstake_cooldown_ms: u64,
    /// IO minted into the rewards pool at the end of every rewards epoch and
    /// shared among the workers online then. 0 (the default) turns rewards off.
    #[arg(long, default_value = "0")]
    pub rewards_io_per_epoch: String,
    /// Length of a rewards epoch.
    #[arg(long, default_value_t = iog_core::DEFAULT_REWARDS_EPOCH_MS,
          value_parser = clap::value_parser!(u64).range(100..))]
    pub rewards_epoch_ms: u64,
}

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct WorkerArgs {
    #[command(subcommand)]
    pub command: Option<WorkerCommand>,
    /// Where the worker keeps its identity key.
    #[arg(long, default_value_os_t = default_data_dir("worker"))]
    pub data_dir: PathBuf,
    /// CPU tasks to run at once.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub slots: u32,
    /// The worker's region, as placement and `iog market search` see it (`eu`, `us-east`, …).
    #[arg(long)]
    pub region: Option<String>,
    /// Price asked per device-hour, in IO (e.g. 0.5). Default 0: free.
    #[arg(long)]
    pub price: Option<String>,
    /// Memory lent to tasks, in GiB (e.g. 8 or 0.5), and proven in
    /// hardware challenges, which fill 7/8 of it. Default: half the RAM.
    #[arg(long)]
    pub memory_gib: Option<f64>,
    /// UDP port on which to answer peers' probes (network coordinates for
    /// gang placement). Default: any free port. Forward it on a NAT router
    /// so peers outside can reach it.
    #[arg(long, conflicts_with = "no_probe")]
    pub probe_port: Option<u16>,
    /// Answer no probes and send none; gangs then see this worker by its
    /// round trip to the coordinator.
    #[arg(long)]
    pub no_probe: bool,
    /// Run users' WebAssembly modules (`wasm` jobs) in the sandbox, with
    /// the default caps (set others in worker.toml's [executors.wasm]).
    /// Needs an iog built with `--features wasm`.
    #[arg(long)]
    pub wasm: bool,
    /// Run users' commands (`process` and `blender` jobs) under bubblewrap
    /// (`bwrap`, which must be installed), with the default caps and no
    /// network (set others in worker.toml's [executors.process]); python3
    /// and blender are offered when found.
    #[arg(long)]
    pub process: bool,
    /// Offer software GPU adapters (Mesa's llvmpipe, which runs on the
    /// CPU) as GPUs and run GPU kernels on them: to try the GPU path on a
    /// machine without a GPU. Needs an iog built with `--features gpu`.
    #[arg(long, conflicts_with = "no_gpu_kernels")]
    pub gpu_software: bool,
    /// Run no GPU kernels: jobs that ask for a GPU compute on the CPU
    /// here, while still holding one of this worker's GPUs.
    #[arg(long)]
    pub no_gpu_kernels: bool,
    /// A worker.toml (slots, [offer], [owner], [probe], [executors]) read at start and
    /// re-read when it changes; its settings win over the flags above, and
    /// the flags hold for what it leaves out.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum WorkerCommand {
    /// Show the compute devices this machine would offer.
    Devices {
        /// Include software GPU adapters (llvmpipe), as `iog worker
        /// --gpu-software` offers them.
        #[arg(long)]
        gpu_software: bool,
    },
    /// List the workers a coordinator knows.
    List,
    /// Show one worker as the coordinator sees it: offer, trust,
    /// reputation, hardware challenges.
    Show {
        /// The worker's id, or the start of it.
        worker_id: String,
    },
    /// Show what this worker (the key in --data-dir) offers, as the
    /// coordinator sees it, and how much of it is in use.
    Offers {
        /// The worker's data dir, which holds its key.
        #[arg(long, default_value_os_t = default_data_dir("worker"))]
        data_dir: PathBuf,
    },
    /// Stake IO from the worker's own wallet (its id is its address; fund it
    /// with `iog wallet send <worker id> …`), signed with its key.
    Stake {
        /// How much, e.g. 5 or 0.25.
        amount: String,
        /// The worker's data dir, which holds its key.
        #[arg(long, default_value_os_t = default_data_dir("worker"))]
        data_dir: PathBuf,
    },
    /// Start returning staked IO to the worker's wallet; it arrives after the
    /// network's cooldown and stays slashable until then.
    Unstake {
        /// How much, e.g. 5 or 0.25.
        amount: String,
        /// The worker's data dir, which holds its key.
        #[arg(long, default_value_os_t = default_data_dir("worker"))]
        data_dir: PathBuf,
    },
    /// Move earnings from the worker's payout account to its own wallet.
    Withdraw {
        /// How much, e.g. 5 or 0.25.
        amount: String,
        /// The worker's data dir, which holds its key.
        #[arg(long, default_value_os_t = default_data_dir("worker"))]
        data_dir: PathBuf,
    },
    /// Show what this worker (the key in --data-dir) has earned.
    Earnings {
        /// The worker's data dir, which holds its key.
        #[arg(long, default_value_os_t = default_data_dir("worker"))]
        data_dir: PathBuf,
        /// How many of its latest payments to list.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
}

#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(subcommand)]
    pub command: JobCommand,
}

#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// Submit a job file; prints the job id.
    Submit {
        /// The job file (TOML). See examples/.
        file: PathBuf,
        /// Follow the job's progress until it ends.
        #[arg(long)]
        watch: bool,
    },
    /// Show what a paid job has cost: escrow, fees, refund, each worker's pay.
    Bill { job_id: String },
    /// Follow a job's progress until it ends.
    Watch { job_id: String },
    /// Show a job's state.
    Status { job_id: String },
    /// List a job's tasks (replicas too): state, attempts, and the worker,
    /// device and run time of each committed result.
    Tasks { job_id: String },
    /// Download a job's results.
    Result {
        job_id: String,
        /// Directory to write the artifacts into.
        #[arg(long)]
        out: PathBuf,
        /// Wait for the job to end first.
        #[arg(long)]
        wait: bool,
    },
    /// Cancel a running job.
    Cancel { job_id: String },
    /// List recent jobs.
    List {
        #[arg(long, default_value_t = 20)]
        limit: u32,
    },
}

/// `$XDG_DATA_HOME/iog/<role>`, else `~/.local/share/iog/<role>`, else `./iog-data/<role>`.
pub fn default_data_dir(role: &str) -> PathBuf {
    let base = std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".local/share")))
        .map(|base| base.join("iog"))
        .unwrap_or_else(|| PathBuf::from("iog-data"));
    base.join(role)
}
