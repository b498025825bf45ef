//! The worker's session loop.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::{SinkExt, StreamExt};
use iog_client::Client;
use iog_host::Identity;
use iog_proto::PROTOCOL_VERSION;
use iog_proto::stream::{CoordinatorMessage, HeldTask, ProbePeer, WorkerMessage};
use iog_types::{Device, LeaseToken, TaskId, WorkerId};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;

use iog_sched::{Coord, Offer};

use crate::WorkerConfig;
use crate::challenge::Challenger;
use crate::config::{PROCESS_VERSION, WorkerFile};
use crate::exec::Executors;
use crate::keys::TaskKeys;
use crate::probe::ProbeSocket;
use crate::runner::{self, Finished, TaskEnv};

/// How long to wait for the coordinator's welcome after connecting.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// Events kept for slow subscribers before the oldest are dropped.
const EVENTS_BUFFER: usize = 4_096;

/// Things a worker did, for embedding programs (the demo, benchmarks).
#[derive(Debug, Clone)]
pub enum WorkerEvent {
    Connected,
    Disconnected {
        reason: String,
    },
    /// The owner is using the machine: running tasks were stopped.
    Paused {
        reason: String,
        stopped: usize,
    },
    /// The owner's machine is idle again.
    Resumed,
    /// The config file changed and the new offer was sent.
    OfferChanged,
    TaskStarted {
        task_id: TaskId,
        at: Instant,
    },
    TaskFinished {
        task_id: TaskId,
        ok: bool,
    },
}

/// A task the worker holds: running, or finished with its result not yet acknowledged.
enum Held {
    Running { token: LeaseToken, job: JoinHandle<()> },
    Reported { token: LeaseToken, message: Box<WorkerMessage>, reported_at: Instant },
}

impl Held {
    fn token(&self) -> LeaseToken {
        match self {
            Held::Running { token, .. } | Held::Reported { token, .. } => *token,
        }
    }
}

type HeldMap = Arc<Mutex<HashMap<TaskId, Held>>>;

/// A running worker.
pub struct WorkerHandle {
    worker_id: WorkerId,
    devices: Vec<Device>,
    events: broadcast::Sender<WorkerEvent>,
    shutdown: watch::Sender<bool>,
    join: Option<JoinHandle<Result<(), Refused>>>,
}

/// The coordinator refused this worker for a reason that retrying cannot
/// fix (an incompatible protocol version); the worker stops.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub code: String,
    pub message: String,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the coordinator refused this worker ({}): {}", self.code, self.message)
    }
}

impl std::error::Error for Refused {}

/// Refusal codes after which reconnecting is pointless.
const PERMANENT_REFUSALS: [&str; 2] = ["protocol_version", "too_many_devices"];

impl WorkerHandle {
    pub fn worker_id(&self) -> &WorkerId {
        &self.worker_id
    }

    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<WorkerEvent> {
        self.events.subscribe()
    }

    /// Stops the worker: closes its session and abandons running tasks
    /// (their leases lapse on the coordinator).
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        if let Some(join) = self.join {
            let _ = join.await;
        }
    }

    /// Waits until the worker stops on its own, which it does only when the
    /// coordinator refuses it for good. Dropping this future early leaves the
    /// handle usable, so it can race Ctrl-C and then [`WorkerHandle::shutdown`].
    pub async fn wait(&mut self) -> anyhow::Result<()> {
        let Some(join) = self.join.as_mut() else { return Ok(()) };
        let joined = join.await;
        self.join = None;
        match joined {
            Ok(result) => result.map_err(anyhow::Error::from),
            Err(err) => Err(anyhow::anyhow!("worker task ended abnormally: {err}")),
        }
    }
}

/// Loads or creates the worker's identity, discovers its devices and starts
/// its session loop in the background.
pub async fn start(config: WorkerConfig) -> anyhow::Result<WorkerHandle> {
    let identity = Identity::load_or_create(&config.data_dir).context("load worker identity")?;
    let mut config = config;
    if let Some(path) = &config.config_file {
        let file = WorkerFile::read(path).map_err(anyhow::Error::msg).context("read worker config")?;
        config.apply(&file);
        config.apply_executors(&file);
        config.apply_gpu(&file);
    }
    let gpu = config.gpu;
    #[allow(unused_mut)]
    let (mut report, kernels) = tokio::task::spawn_blocking(move || crate::gpu::discover_with_kernels(gpu))
        .await
        .context("discover devices")?;
    #[cfg(feature = "cheats")]
    if config.cheat == Some(crate::challenge::Cheat::ClaimFasterGpu) {
        for device in report.devices.iter_mut().filter(|device| device.kind == iog_types::DeviceKind::Gpu) {
            device.model = crate::challenge::CLAIMED_GPU.to_owned();
        }
    }
    for note in &report.notes {
        tracing::info!(note, "device discovery");
    }
    if let Some(process) = config.executors.process.as_mut() {
        let (programs, containers) = (process.programs.clone(), process.containers);
        let found = tokio::task::spawn_blocking(move || {
            let mut found = crate::exec::detect_programs(&programs);
            found.extend(containers.then(crate::exec::detect_podman).flatten());
            found
        })
        .await
        .context("look for the programs the process executor offers")?;
        for software in &found {
            tracing::info!(program = %software.name, version = %software.version, "offered to process jobs");
        }
        process.found = found;
    }
    let challenge_gpus = kernels.clone();
    let executors = Arc::new(Executors::new(&config, &report.devices, kernels)?);
    if let (Some(process), Some(bound)) = (config.executors.process.as_mut(), executors.process_memory_bound()) {
        process.sandbox = format!("{PROCESS_VERSION} {bound}");
        tracing::info!(memory = %bound, "process tasks run under bubblewrap");
    }
    let offer = config.offer(&report.devices);
    offer.validate().context("the worker's offer")?;
    let client = Client::connect(&config.coordinator_url, config.coordinator_pin)
        .context("configure coordinator client")?
        .with_identity(identity.clone());
    let probe = match config.probe_bind {
        Some(addr) => Some(Arc::new(ProbeSocket::bind(addr, Duration::ZERO).await.with_context(|| {
            format!("bind the probe socket on UDP {addr} (choose another [probe] port, or set enabled = false)")
        })?)),
        None => None,
    };
    let worker_id = identity.worker_id();
    let (events, _) = broadcast::channel(EVENTS_BUFFER);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let (offer_tx, offer_rx) = watch::channel(offer);
    let (policy_tx, policy_rx) = watch::channel(config.owner.clone());
    let (owner_tx, owner_rx) = watch::channel(None);
    crate::watch::spawn_owner_thread(policy_rx, config.owner_poll_ms, owner_tx);
    if let Some(path) = config.config_file.clone() {
        tokio::spawn(crate::watch::watch_config_file(
            path,
            config.clone(),
            report.devices.clone(),
            offer_tx,
            policy_tx,
            shutdown_rx.clone(),
        ));
    }
    let challenger = Challenger::new(
        challenge_gpus,
        #[cfg(feature = "cheats")]
        config.cheat,
    );
    #[cfg(feature = "cheats")]
    let tamper = crate::cheat::Tamper::for_cheat(config.cheat);
    let (keys, keys_wanted) = TaskKeys::new(worker_id.clone(), &identity);
    let seal_key_signature =
        hex::encode(identity.sign(&iog_seal::seal_key_signing_message(&worker_id.0, &keys.public())));
    let agent = Agent {
        #[cfg(feature = "cheats")]
        tamper,
        keys,
        executors,
        seal_key_signature,
        config,
        client,
        worker_id: worker_id.clone(),
        identity,
        devices: report.devices.clone(),
        held: Arc::new(Mutex::new(HashMap::new())),
        events: events.clone(),
        offer: offer_rx,
        owner: owner_rx,
        probe,
        coord: Arc::new(Mutex::new(Coord::new())),
        probing: Arc::new(AtomicBool::new(false)),
        probed: Arc::new(AtomicBool::new(false)),
        challenger,
        audience: Mutex::new(None),
    };
    let join = tokio::spawn(agent.run(shutdown_rx, keys_wanted));
    Ok(WorkerHandle { worker_id, devices: report.devices, events, shutdown, join: Some(join) })
}

struct Agent {
    config: WorkerConfig,
    client: Client,
    worker_id: WorkerId,
    /// Signs the session's hello.
    identity: Identity,
    devices: Vec<Device>,
    held: HeldMap,
    events: broadcast::Sender<WorkerEvent>,
    /// The offer as the config file says now.
    offer: watch::Receiver<Offer>,
    /// `Some(reason)` while the owner uses the machine.
    owner: watch::Receiver<Option<String>>,
    /// Where it answers and sends probes; `None` when probing is off.
    probe: Option<Arc<ProbeSocket>>,
    /// Its network coordinate.
    coord: Arc<Mutex<Coord>>,
    /// A probe round is under way (a new one is not started meanwhile).
    probing: Arc<AtomicBool>,
    /// Some peer has answered: the coordinate is worth reporting.
    probed: Arc<AtomicBool>,
    /// Hardware challenges under way.
    challenger: Challenger,
    /// The coordinator key (`audience`) of the first session, to tell the
    /// owner when a later one differs.
    audience: Mutex<Option<String>>,
    /// How a cheating worker tampers with its results (tests only).
    #[cfg(feature = "cheats")]
    tamper: Option<crate::cheat::Tamper>,
    /// Sealed tasks waiting for their keys.
    keys: Arc<TaskKeys>,
    /// Where users' own code runs (wasm modules, sandboxed commands).
    executors: Arc<Executors>,
    /// The seal key's signature by the identity, for the hello.
    seal_key_signature: String,
}

impl Agent {
    async fn run(
        self,
        mut shutdown: watch::Receiver<bool>,
        mut keys_wanted: mpsc::UnboundedReceiver<(TaskId, LeaseToken)>,
    ) -> Result<(), Refused> {
        let (done_tx, mut done_rx) = mpsc::unbounded_channel::<TaskId>();
        let mut backoff_ms = self.config.reconnect_backoff_min_ms;
        let mut outcome_of_run = Ok(());
        while !*shutdown.borrow() {
            let outcome = tokio::select! {
                outcome = self.session(&done_tx, &mut done_rx, &mut keys_wanted, &mut backoff_ms) => outcome,
                _ = shutdown.wait_for(|stop| *stop) => break,
            };
            if let Some(refused) = outcome.as_ref().err().and_then(|err| err.downcast_ref::<Refused>())
                && PERMANENT_REFUSALS.contains(&refused.code.as_str())
            {
                tracing::error!(worker_id = %self.worker_id.short(), error = %refused, "worker stopped");
                outcome_of_run = Err(refused.clone());
                break;
            }
            let refused = outcome.as_ref().err().is_some_and(|err| err.downcast_ref::<Refused>().is_some());
            let reason = match outcome {
                Ok(()) => "the coordinator closed the session".to_owned(),
                Err(err) => format!("{err:#}"),
            };
            if refused {
                // The owner can fix this one (for example by staking); say it loudly.
                tracing::warn!(worker_id = %self.worker_id.short(), reason, retry_in_ms = backoff_ms, "refused; retrying");
            } else {
                tracing::info!(worker_id = %self.worker_id.short(), reason, retry_in_ms = backoff_ms, "session ended");
            }
            let _ = self.events.send(WorkerEvent::Disconnected { reason });
            // Jitter spreads reconnects of many workers after a coordinator restart.
            let jitter = rand::random::<u64>() % (backoff_ms / 2 + 1);
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(backoff_ms / 2 + jitter)) => {}
                _ = shutdown.wait_for(|stop| *stop) => break,
            }
            backoff_ms = (backoff_ms * 2).min(self.config.reconnect_backoff_max_ms);
        }
        // Challenge work under way (a GPU's bands) stops at its next step.
        self.challenger.reset();
        for (_, held) in self.held.lock().expect("held lock").drain() {
            if let Held::Running { job, .. } = held {
                job.abort();
            }
        }
        outcome_of_run
    }

    /// Remembers the coordinator's key from the first session and warns
    /// when a later session names another: behind the same address now
    /// stands another network, or a coordinator that lost its key, and
    /// what this worker earned is recorded under the old one.
    fn note_audience(&self, audience: &str) {
        let mut seen = self.audience.lock().expect("audience lock");
        match seen.as_deref() {
            None => *seen = Some(audience.to_owned()),
            Some(first) if first == audience => {}
            Some(first) => {
                tracing::warn!(
                    before = first,
                    now = audience,
                    coordinator = self.client.url(),
                    "the coordinator's key changed: this is another network or a reinstalled coordinator; \
                     earnings recorded under the old key stay there"
                );
                *seen = Some(audience.to_owned());
            }
        }
    }

    /// The session's hello, signed over the coordinator's nonce and the
    /// TLS channel of this very connection: the only proof of the worker's
    /// id the coordinator takes, and worthless on any other connection.
    fn hello(&self, nonce: &str, audience: &str, channel: &str) -> WorkerMessage {
        let message = iog_proto::auth::session_signing_message(nonce, &self.worker_id.0, audience, channel);
        WorkerMessage::Hello {
            signature: hex::encode(self.identity.sign(&message)),
            protocol_version: PROTOCOL_VERSION,
            worker_id: self.worker_id.clone(),
            agent_version: env!("CARGO_PKG_VERSION").to_owned(),
            devices: self.devices.clone(),
            offer: self.offer.borrow().clone(),
            held: self.held_tasks(),
            probe_port: self.probe.as_ref().map(|probe| probe.port()),
            seal_key: self.keys.public().to_hex(),
            seal_key_signature: self.seal_key_signature.clone(),
        }
    }

    /// Its coordinate, once some peer has answered a probe.
    fn coord(&self) -> Option<Coord> {
        self.probed.load(Ordering::Relaxed).then(|| *self.coord.lock().expect("coordinate lock"))
    }

    /// Starts a probe round in the background, unless one is under way.
    fn probe_round(&self, peers: Vec<ProbePeer>) {
        let Some(probe) = self.probe.clone() else { return };
        if self.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (coord, probing, probed) = (self.coord.clone(), self.probing.clone(), self.probed.clone());
        tokio::spawn(async move {
            let answered = probe.round(&peers, &coord).await;
            if answered > 0 {
                probed.store(true, Ordering::Relaxed);
            }
            tracing::debug!(named = peers.len(), answered, "probe round");
            probing.store(false, Ordering::Release);
        });
    }

    /// Results reported at least `age` ago and not acknowledged since; their
    /// report time is reset so each goes at most once per `age`.
    fn unacknowledged(&self, age: Duration) -> Vec<WorkerMessage> {
        let mut held = self.held.lock().expect("held lock");
        let now = Instant::now();
        held.values_mut()
            .filter_map(|h| match h {
                Held::Reported { message, reported_at, .. } if now.duration_since(*reported_at) >= age => {
                    *reported_at = now;
                    Some((**message).clone())
                }
                _ => None,
            })
            .collect()
    }

    /// The tasks this worker holds: running, or with a result not yet acknowledged.
    fn held_tasks(&self) -> Vec<HeldTask> {
        let held = self.held.lock().expect("held lock");
        held.iter().map(|(task_id, h)| HeldTask { task_id: *task_id, token: h.token() }).collect()
    }

    async fn session(
        &self,
        done_tx: &mpsc::UnboundedSender<TaskId>,
        done_rx: &mut mpsc::UnboundedReceiver<TaskId>,
        keys_wanted: &mut mpsc::UnboundedReceiver<(TaskId, LeaseToken)>,
        backoff_ms: &mut u64,
    ) -> anyhow::Result<()> {
        let url = self.client.stream_url();
        // `true` disables Nagle's algorithm: results are small messages that
        // must not wait for the coordinator's delayed ACK.
        let connector = self.client.tls_config().map(tokio_tungstenite::Connector::Rustls);
        let (socket, _) = tokio::time::timeout(
            WELCOME_TIMEOUT,
            tokio_tungstenite::connect_async_tls_with_config(&url, None, true, connector),
        )
        .await
        .with_context(|| format!("connect to {url}: timed out"))?
        .with_context(|| format!("connect to {url}"))?;
        let channel = match socket.get_ref() {
            tokio_tungstenite::MaybeTlsStream::Rustls(tls) => {
                iog_client::tls::channel_of(tls.get_ref().1).context("derive the TLS channel binding")?
            }
            tokio_tungstenite::MaybeTlsStream::Plain(_) => iog_proto::auth::channel_of_exporter(None),
            _ => anyhow::bail!("the stream to {url} is neither plain nor rustls TLS"),
        };
        let (mut sink, mut stream) = socket.split();
        let (nonce, audience) = loop {
            let message = tokio::time::timeout(WELCOME_TIMEOUT, stream.next())
                .await
                .context("wait for the session challenge: timed out")?
                .context("the coordinator closed the connection before its session challenge")?
                .context("read the session challenge")?;
            match decode(message)? {
                Some(CoordinatorMessage::SessionChallenge { nonce, audience }) => break (nonce, audience),
                Some(CoordinatorMessage::Refused { code, message }) => return Err(Refused { code, message }.into()),
                _ => continue,
            }
        };
        self.note_audience(&audience);
        sink.send(encode(&self.hello(&nonce, &audience, &channel))).await.context("send hello")?;
        let heartbeat_interval_ms = loop {
            let message = tokio::time::timeout(WELCOME_TIMEOUT, stream.next())
                .await
                .context("wait for welcome: timed out")?
                .context("the coordinator closed the connection before its welcome")?
                .context("read welcome")?;
            match decode(message)? {
                Some(CoordinatorMessage::Welcome { heartbeat_interval_ms, .. }) => break heartbeat_interval_ms,
                Some(CoordinatorMessage::Refused { code, message }) => return Err(Refused { code, message }.into()),
                _ => continue,
            }
        };
        *backoff_ms = self.config.reconnect_backoff_min_ms;
        tracing::info!(worker_id = %self.worker_id.short(), coordinator = self.client.url(), "connected");
        let _ = self.events.send(WorkerEvent::Connected);
        // Results that waited for this session go out first.
        let pending: Vec<WorkerMessage> = self
            .held
            .lock()
            .expect("held lock")
            .values()
            .filter_map(|h| match h {
                Held::Reported { message, .. } => Some((**message).clone()),
                Held::Running { .. } => None,
            })
            .collect();
        for message in pending {
            sink.send(encode(&message)).await.context("resend result")?;
        }
        // Sealed tasks still waiting for their keys ask this session; what
        // the last one was asked is gone with it on the coordinator's side.
        while keys_wanted.try_recv().is_ok() {}
        for (task_id, token) in self.keys.waiting() {
            sink.send(encode(&WorkerMessage::KeyWanted { task_id, token })).await.context("ask for a task key")?;
        }
        // The hello carried the current offer; only later changes are news.
        let mut offer = self.offer.clone();
        offer.mark_unchanged();
        let mut owner = self.owner.clone();
        let busy = owner.borrow_and_update().clone();
        if let Some(reason) = busy {
            // A new session starts unpaused on the coordinator's side.
            self.pause(&reason);
            sink.send(encode(&WorkerMessage::Pause { reason })).await.context("send pause")?;
        }
        let clock = Instant::now();
        let mut rtt_ms: Option<u32> = None;
        let (challenge_tx, mut challenge_rx) = mpsc::unbounded_channel::<WorkerMessage>();
        // Challenge ids restart with the session; nothing of the last one's may answer.
        self.challenger.reset();
        let mut heartbeat = tokio::time::interval(Duration::from_millis(heartbeat_interval_ms.max(1)));
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                Ok(()) = offer.changed() => {
                    let offer = offer.borrow_and_update().clone();
                    tracing::info!(region = %offer.region, price = %offer.price_io_per_device_hour, "offer changed");
                    sink.send(encode(&WorkerMessage::OfferChanged { offer })).await.context("send offer")?;
                    let _ = self.events.send(WorkerEvent::OfferChanged);
                }
                Ok(()) = owner.changed() => {
                    let busy = owner.borrow_and_update().clone();
                    match busy {
                        Some(reason) => {
                            self.pause(&reason);
                            sink.send(encode(&WorkerMessage::Pause { reason })).await.context("send pause")?;
                        }
                        None => {
                            tracing::info!("the owner's machine is idle again; taking tasks");
                            sink.send(encode(&WorkerMessage::Resume)).await.context("send resume")?;
                            let _ = self.events.send(WorkerEvent::Resumed);
                        }
                    }
                }
                _ = heartbeat.tick() => {
                    let held = self.held_tasks();
                    let heartbeat = WorkerMessage::Heartbeat { held, rtt_ms, coord: self.coord() };
                    sink.send(encode(&heartbeat)).await.context("send heartbeat")?;
                    // A ping carrying its send time measures the round trip
                    // for the next heartbeat; the coordinator's WebSocket
                    // answers it with a pong on its own.
                    let sent_us = clock.elapsed().as_micros() as u64;
                    sink.send(Message::Ping(sent_us.to_le_bytes().to_vec().into())).await.context("send ping")?;
                    // A result that waited a whole interval for its acknowledgement
                    // goes again; the coordinator answers a repeat as a duplicate.
                    for message in self.unacknowledged(Duration::from_millis(heartbeat_interval_ms)) {
                        sink.send(encode(&message)).await.context("resend result")?;
                    }
                }
                Some((task_id, token)) = keys_wanted.recv() => {
                    sink.send(encode(&WorkerMessage::KeyWanted { task_id, token })).await.context("ask for a task key")?;
                }
                Some(reply) = challenge_rx.recv() => {
                    sink.send(encode(&reply)).await.context("send challenge answer")?;
                }
                finished = done_rx.recv() => {
                    let Some(task_id) = finished else { return Ok(()) };
                    let message = match self.held.lock().expect("held lock").get(&task_id) {
                        Some(Held::Reported { message, .. }) => Some((**message).clone()),
                        _ => None,
                    };
                    if let Some(message) = message {
                        sink.send(encode(&message)).await.context("send result")?;
                    }
                }
                incoming = stream.next() => {
                    let Some(message) = incoming else { return Ok(()) };
                    let message = message.context("read from coordinator")?;
                    if let Message::Pong(payload) = &message {
                        if let Ok(sent_us) = <[u8; 8]>::try_from(payload.as_ref()) {
                            let now_us = clock.elapsed().as_micros() as u64;
                            let rtt_us = now_us.saturating_sub(u64::from_le_bytes(sent_us));
                            rtt_ms = Some(u32::try_from(rtt_us.div_ceil(1_000)).unwrap_or(u32::MAX));
                        }
                        continue;
                    }
                    match decode(message)? {
                        Some(CoordinatorMessage::Assign { task_id, token, input, input_bytes }) => {
                            self.assign(task_id, token, input, input_bytes, done_tx);
                        }
                        Some(CoordinatorMessage::Revoke { task_id, token, reason }) => {
                            self.revoke(task_id, token, &reason);
                        }
                        Some(CoordinatorMessage::TaskKey { task_id, token, wrapped }) => {
                            self.keys.deliver(task_id, token, &wrapped);
                        }
                        Some(CoordinatorMessage::ResultAck { task_id, token, outcome }) => {
                            let mut held = self.held.lock().expect("held lock");
                            if held.get(&task_id).is_some_and(|h| h.token() == token) {
                                held.remove(&task_id);
                            }
                            tracing::debug!(task_id = %task_id, outcome, "result acknowledged");
                        }
                        Some(CoordinatorMessage::Refused { code, message }) => {
                            return Err(Refused { code, message }.into())
                        }
                        Some(CoordinatorMessage::Probe { peers }) => self.probe_round(peers),
                        Some(CoordinatorMessage::Challenge { challenge_id, challenge }) => {
                            tracing::info!(challenge_id, "hardware challenge");
                            let lent_bytes = self.offer.borrow().cpu_memory_bytes();
                            self.challenger.start(challenge_id, challenge, lent_bytes, challenge_tx.clone());
                        }
                        Some(CoordinatorMessage::ChallengeReveal { challenge_id, sample_seed }) => {
                            self.challenger.reveal(challenge_id, sample_seed, challenge_tx.clone());
                        }
                        Some(CoordinatorMessage::Welcome { .. } | CoordinatorMessage::SessionChallenge { .. }) | None => {}
                    }
                }
            }
        }
    }

    fn assign(
        &self,
        task_id: TaskId,
        token: LeaseToken,
        input: iog_types::BlobId,
        input_bytes: Option<Vec<u8>>,
        done_tx: &mpsc::UnboundedSender<TaskId>,
    ) {
        #[cfg(feature = "cheats")]
        match self.config.cheat {
            Some(crate::Cheat::DropTasks) => {
                tracing::debug!(task_id = %task_id, "cheat: dropping the task without a word");
                return;
            }
            Some(crate::Cheat::HoldTasks) => {
                tracing::debug!(task_id = %task_id, "cheat: holding the task without running it");
                let job = tokio::spawn(std::future::pending::<()>());
                self.held.lock().expect("held lock").insert(task_id, Held::Running { token, job });
                return;
            }
            _ => {}
        }
        if self.owner.borrow().is_some() {
            // Sent before the coordinator read our pause; it takes the task
            // back when it does.
            tracing::debug!(task_id = %task_id, "assignment while the owner uses the machine; not run");
            return;
        }
        let mut held = self.held.lock().expect("held lock");
        if held.get(&task_id).is_some_and(|h| h.token() == token) {
            return; // Already running or reported under this lease.
        }
        let _ = self.events.send(WorkerEvent::TaskStarted { task_id, at: Instant::now() });
        tracing::debug!(task_id = %task_id, token = token.0, "task assigned");
        let env = TaskEnv { client: self.client.clone(), keys: self.keys.clone(), executors: self.executors.clone() };
        let held_map = self.held.clone();
        let done_tx = done_tx.clone();
        let events = self.events.clone();
        let cpu = self.devices.first().map_or_else(|| "cpu0".to_owned(), |d| d.name.clone());
        #[cfg(feature = "cheats")]
        let tamper = self.tamper.clone();
        let job = tokio::spawn(async move {
            let result = runner::run(
                &env,
                task_id,
                token,
                input,
                input_bytes,
                #[cfg(feature = "cheats")]
                tamper,
            )
            .await;
            let ok = result.is_ok();
            let message = match result {
                Ok(Finished { output, output_bytes, duration_ms, work_units, device }) => WorkerMessage::TaskDone {
                    task_id,
                    token,
                    output,
                    output_bytes,
                    duration_ms,
                    work_units,
                    device: device.unwrap_or(cpu),
                },
                Err(error) => {
                    tracing::warn!(task_id = %task_id, error, "task failed");
                    WorkerMessage::TaskFailed { task_id, token, error }
                }
            };
            let mut held = held_map.lock().expect("held lock");
            // A revoked lease leaves nothing to report.
            if held.get(&task_id).is_some_and(|h| h.token() == token) {
                held.insert(task_id, Held::Reported { token, message: Box::new(message), reported_at: Instant::now() });
                let _ = done_tx.send(task_id);
            }
            let _ = events.send(WorkerEvent::TaskFinished { task_id, ok });
        });
        if let Some(Held::Running { job: old, .. }) = held.insert(task_id, Held::Running { token, job }) {
            old.abort();
        }
    }

    /// Stops every running task at once because the owner wants the
    /// machine; finished results still wait for their acknowledgement.
    /// A task's CPU work that is already under way cannot be interrupted
    /// from outside and finishes in the background, its result discarded.
    fn pause(&self, reason: &str) {
        let mut held = self.held.lock().expect("held lock");
        let running: Vec<TaskId> =
            held.iter().filter(|(_, h)| matches!(h, Held::Running { .. })).map(|(task_id, _)| *task_id).collect();
        for task_id in &running {
            if let Some(Held::Running { job, .. }) = held.remove(task_id) {
                job.abort();
            }
        }
        tracing::info!(reason, stopped = running.len(), "the owner is using the machine; tasks stopped");
        let _ = self.events.send(WorkerEvent::Paused { reason: reason.to_owned(), stopped: running.len() });
    }

    fn revoke(&self, task_id: TaskId, token: LeaseToken, reason: &str) {
        let mut held = self.held.lock().expect("held lock");
        if held.get(&task_id).is_some_and(|h| h.token() == token) {
            if let Some(Held::Running { job, .. }) = held.remove(&task_id) {
                job.abort();
            }
            tracing::info!(task_id = %task_id, reason, "task revoked");
        }
    }
}

fn encode(message: &WorkerMessage) -> Message {
    Message::Text(serde_json::to_string(message).expect("worker messages always serialise").into())
}

fn decode(message: Message) -> anyhow::Result<Option<CoordinatorMessage>> {
    let parsed = match message {
        Message::Text(text) => serde_json::from_str(&text),
        Message::Binary(bytes) => serde_json::from_slice(&bytes),
        Message::Close(_) => anyhow::bail!("the coordinator closed the connection"),
        _ => return Ok(None),
    };
    parsed.map(Some).context("decode coordinator message (are worker and coordinator the same iog version?)")
}
