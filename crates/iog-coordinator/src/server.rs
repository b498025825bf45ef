//! Starting and stopping a coordinator.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use iog_core::Core;
use iog_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::engine::{Engine, EngineHandle, now_ms};
use crate::listener::Incoming;
use crate::{CoordinatorConfig, api, assemble};
use iog_proto::auth::Fingerprint;

/// What request handlers share.
#[derive(Clone)]
pub(crate) struct AppState {
    pub(crate) store: Store,
    pub(crate) engine: EngineHandle,
    pub(crate) core_config: Arc<iog_core::Config>,
    /// Largest faucet grant; `None` when the faucet is off (production).
    pub(crate) faucet_max: Option<iog_ledger::Amount>,
    /// The base58 public key that signs ledger checkpoints.
    pub(crate) ledger_signer: String,
    /// Stake a worker needs per device.
    pub(crate) stake_min_per_device: iog_ledger::Amount,
    /// Where online workers answer probes, and their coordinates.
    pub(crate) probes: Arc<crate::probes::Directory>,
    /// How often a session names its worker peers to probe; 0: never.
    pub(crate) probe_interval_ms: u64,
    pub(crate) round_limits: crate::challenge::RoundLimits,
    /// Nonces, tokens, and what signatures must name.
    pub(crate) auth: Arc<crate::auth::Auth>,
    /// Request rates and session counts per address and identity.
    pub(crate) limiter: Arc<crate::limits::Limiter>,
    /// Seal keys of workers and key requests of sealed jobs.
    pub(crate) keys: Arc<crate::keys::KeyDesk>,
    /// Whether a job's outputs are read on arrival (its workload is one
    /// `iog_workloads::checks_outputs` names), by job: the store is asked
    /// once per job, not once per result.
    pub(crate) output_checks: Arc<std::sync::Mutex<std::collections::HashMap<iog_types::JobId, bool>>>,
}

/// Rebuilds the ledger by replaying its journal from the store, checking the
/// chain on the way; a broken journal stops the coordinator.
pub async fn load_ledger(store: &Store) -> anyhow::Result<iog_ledger::Ledger> {
    let rows = store.journal().await.context("read ledger journal")?;
    let mut entries = Vec::with_capacity(rows.len());
    for (seq, bytes) in rows {
        let entry = iog_ledger::Entry::decode(&bytes).map_err(|err| anyhow::anyhow!("journal row {seq}: {err}"))?;
        anyhow::ensure!(entry.seq == seq, "journal row {seq} holds entry {}", entry.seq);
        entries.push(entry);
    }
    iog_ledger::Ledger::replay(&entries).map_err(|err| anyhow::anyhow!("replay ledger journal: {err}"))
}

/// A running coordinator: its API and worker stream on one address.
pub struct Coordinator {
    addr: SocketAddr,
    fingerprint: Option<Fingerprint>,
    shutdown: watch::Sender<bool>,
    server: JoinHandle<std::io::Result<()>>,
    engine: JoinHandle<()>,
    store: Store,
}

impl Coordinator {
    /// Opens the store, restores the core from it and starts serving.
    ///
    /// The bound address is also written to `<data_dir>/coordinator.addr`,
    /// so tools can find a coordinator that was started on port 0.
    pub async fn start(config: CoordinatorConfig) -> anyhow::Result<Coordinator> {
        anyhow::ensure!(
            (1..=crate::KEY_WAIT_MS_MAX).contains(&config.key_wait_ms),
            "the key wait of sealed tasks is {} ms; it must be between 1 ms and {} ms, shorter than a worker's own \
             10-minute wait",
            config.key_wait_ms,
            crate::KEY_WAIT_MS_MAX
        );
        let store = Store::open(&config.data_dir).await.context("open store")?;
        let snapshot = store.load_snapshot().await.context("load stored state")?;
        let n_jobs = snapshot.jobs.len();
        // Adaptive verification's draws are keyed by a secret drawn at each
        // start, so no worker can tell which of its results will be checked.
        let core_config = iog_core::Config { verify_key: rand::random(), ..config.core.clone() };
        let core = Core::restore(core_config, snapshot, now_ms()).context("restore coordinator state")?;
        if n_jobs > 0 {
            tracing::info!(n_jobs, "resumed running jobs from the store");
        }
        let ledger = load_ledger(&store).await?;
        let mut paid = Vec::new();
        for (job_id, spec_json) in store.running_job_specs().await.context("read running jobs")? {
            let spec = iog_workloads::parse_job_json(&spec_json)
                .with_context(|| format!("stored spec of running job {job_id} no longer parses"))?;
            if let Some(payment) = spec.payment {
                let terms = payment.terms().with_context(|| format!("payment terms of running job {job_id}"))?;
                paid.push((job_id, terms.price_io_per_hour));
            }
        }
        anyhow::ensure!(
            config.fee_bps <= iog_core::FEE_BPS_MAX,
            "the network fee is at most {} basis points, got {}",
            iog_core::FEE_BPS_MAX,
            config.fee_bps
        );
        let payments = iog_core::Payments::new(ledger, config.fee_bps, &paid)
            .with_stake_rules(config.stake_rules)
            .with_reward_rules(config.reward_rules);
        payments.check().map_err(|broken| anyhow::anyhow!("ledger rule broken in the stored journal: {broken}"))?;
        // The coordinator's own key signs the ledger's checkpoints.
        let signer = iog_host::Identity::load_or_create(&config.data_dir).context("load coordinator key")?;
        let ledger_signer = signer.worker_id().0;
        let tls = crate::tls::server_config(&config.tls, &config.data_dir, config.listen).context("set up TLS")?;
        let fingerprint = tls.as_ref().map(|(_, fingerprint)| *fingerprint);
        let auth = crate::auth::Auth::new(ledger_signer.clone(), config.token_ttl_ms);
        let checkpointed =
            store.checkpoints().await.context("read ledger checkpoints")?.last().map_or(0, |c| c.n_entries);
        let (engine, handle) = Engine::new(core, payments, store.clone(), config.tick_interval_ms(), config.batch_max);
        let keys = Arc::new(crate::keys::KeyDesk::default());
        let engine = engine.with_signer(signer, checkpointed as usize).with_key_desk(keys.clone(), config.key_wait_ms);
        let engine = tokio::spawn(engine.run());
        for job_id in store.done_jobs_without_artifacts().await.context("find jobs to assemble")? {
            tokio::spawn(assemble::assemble_and_log(store.clone(), job_id));
        }

        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("listen on {} (is another coordinator running there?)", config.listen))?;
        let addr = listener.local_addr().context("read bound address")?;
        // The pin first: a tool that sees the address may connect at once.
        let pin_path = config.data_dir.join(crate::tls::PIN_FILE_NAME);
        match fingerprint {
            Some(fingerprint) => {
                std::fs::write(&pin_path, format!("{fingerprint}\n")).context("write coordinator.pin")?;
            }
            None if pin_path.exists() => std::fs::remove_file(&pin_path).context("remove coordinator.pin")?,
            None => {}
        }
        std::fs::write(config.data_dir.join("coordinator.addr"), addr.to_string()).context("write coordinator.addr")?;
        let state = AppState {
            store: store.clone(),
            engine: handle,
            core_config: Arc::new(config.core.clone()),
            faucet_max: config.faucet_max,
            ledger_signer,
            stake_min_per_device: config.stake_rules.min_per_device,
            probes: Arc::default(),
            probe_interval_ms: config.probe_interval_ms,
            round_limits: crate::challenge::RoundLimits {
                allowance_ms: config.challenge_allowance_ms,
                walk_steps: config.challenge_walk_steps,
            },
            auth: Arc::new(auth),
            limiter: crate::limits::Limiter::new(config.rate_limits),
            keys,
            output_checks: Arc::default(),
        };
        let app = api::router(state);
        let timeouts = config.timeouts;
        let listener = Incoming::start(listener, tls.map(|(config, _)| config), timeouts);
        let (shutdown, shutdown_rx) = watch::channel(false);
        let server = tokio::spawn(crate::listener::serve(listener, app, timeouts, shutdown_rx));
        match fingerprint {
            Some(fingerprint) => {
                tracing::info!(%addr, %fingerprint, data_dir = %config.data_dir.display(), "coordinator listening (TLS)")
            }
            None => tracing::warn!(%addr, data_dir = %config.data_dir.display(), "coordinator listening on plain HTTP"),
        }
        Ok(Coordinator { addr, fingerprint, shutdown, server, engine, store })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL clients and workers use: `https://` unless it serves
    /// plain HTTP (`--insecure`).
    pub fn url(&self) -> String {
        match self.fingerprint {
            Some(_) => format!("https://{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// The fingerprint of its certificate, which clients pin; `None` on
    /// plain HTTP.
    pub fn fingerprint(&self) -> Option<Fingerprint> {
        self.fingerprint
    }

    /// Waits until the server stops (it stops only on [`Coordinator::shutdown`] or an error).
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        (&mut self.server).await.context("join server")?.context("serve")
    }

    /// Stops serving, lets the engine finish its batch and closes the store.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        // Sessions hold the engine open; the server's end drops them.
        let served = tokio::time::timeout(std::time::Duration::from_secs(5), self.server).await;
        if let Ok(result) = served {
            result.context("join server")?.context("serve")?;
        }
        self.engine.abort();
        self.store.close().await;
        Ok(())
    }
}
