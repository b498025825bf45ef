//! The engine: the one task that owns the core and writes the store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use iog_core::{Action, Core, EscrowView, Event, NewJob, Payments, RunningTask, StakeView, TaskPaid, WorkerView};
use iog_proto::stream::CoordinatorMessage;
use iog_store::Store;
use iog_types::{BlobId, JobId, JobState, LeaseToken, TaskId, UnixMs, WorkerId};
use tokio::sync::{mpsc, oneshot};

use crate::assemble;

/// Commands waiting for the engine. Submitters and sessions wait when it is
/// full, which slows intake instead of growing memory without bound.
pub(crate) const COMMAND_QUEUE_MAX: usize = 65_536;
/// Messages waiting to go to one worker. A worker that lets this many pile
/// up is too slow to keep; its session is closed and it reconnects.
pub(crate) const SESSION_QUEUE_MAX: usize = 4_096;

pub(crate) fn now_ms() -> UnixMs {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// Task inputs the engine keeps in memory to send inside assignments: at
/// most 256 MiB in all. Inputs of jobs beyond it are fetched by workers.
const INLINE_INPUTS_BYTES_MAX: usize = 256 * 1024 * 1024;

/// The ledger's journal gets a signed checkpoint once this many entries
/// are not yet under one…
pub(crate) const CHECKPOINT_ENTRIES_MAX: usize = 4_096;
/// …or once the oldest of them has waited this long.
pub(crate) const CHECKPOINT_INTERVAL_MS: u64 = 10_000;

/// A small blob that must become durable with the batch that carries it.
pub(crate) type InlineBlob = (BlobId, Arc<[u8]>);

/// Why a submission was refused: a stable code for the API and a message.
#[derive(Debug)]
pub(crate) struct Rejection {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

/// A paid submission's escrow: the signed request id and the terms.
pub(crate) struct SubmitPayment {
    pub(crate) request_id: String,
    pub(crate) terms: iog_ledger::billing::JobTerms,
}

/// What the engine can be asked to do.
pub(crate) enum Command {
    /// An event for the core, with the small blob it refers to (a task's
    /// output sent inline).
    Event {
        event: Event,
        blob: Option<InlineBlob>,
    },
    /// A new job; `inline_inputs[i]` holds task i's input when it is small.
    Submit {
        job: NewJob,
        inline_inputs: Vec<Option<Arc<[u8]>>>,
        payment: Option<SubmitPayment>,
        reply: oneshot::Sender<Result<(), Rejection>>,
    },
    Connect {
        worker_id: WorkerId,
        session_id: u64,
        offer: iog_sched::Offer,
        held: Vec<RunningTask>,
        outbox: mpsc::Sender<Outgoing>,
    },
    Disconnect {
        worker_id: WorkerId,
        session_id: u64,
    },
    /// Passes a sealed task's key to the worker's session if the worker
    /// holds the task under `token` now; the reply says whether it was.
    DeliverKey {
        worker_id: WorkerId,
        task_id: TaskId,
        token: LeaseToken,
        wrapped: String,
        reply: oneshot::Sender<bool>,
    },
    Workers {
        reply: oneshot::Sender<Vec<WorkerView>>,
    },
    /// Why a running job's waiting tasks are not placed.
    WaitingReason {
        job_id: JobId,
        reply: oneshot::Sender<Option<String>>,
    },
    /// An operation on the $IO ledger; answered once its journal entry is durable.
    Ledger {
        op: iog_ledger::Op,
        reply: oneshot::Sender<Result<iog_ledger::Outcome, iog_ledger::LedgerError>>,
    },
    /// A balance, read from the ledger in memory.
    Balance {
        account: iog_ledger::AccountId,
        reply: oneshot::Sender<iog_ledger::Balance>,
    },
    /// The newest journal entries that touch an account, newest first.
    History {
        account: iog_ledger::AccountId,
        limit: usize,
        reply: oneshot::Sender<Vec<iog_ledger::Entry>>,
    },
    /// A paid job's escrow and what each of the listed tasks was paid.
    Bill {
        job_id: JobId,
        task_idxs: Vec<u32>,
        reply: oneshot::Sender<Option<(EscrowView, Vec<TaskPaid>)>>,
    },
    /// Stakes or starts unstaking a worker's $IO (the API checked the
    /// worker's signature); answered once durable, with the stake after it
    /// and, when unstaking, when the $IO reaches the wallet.
    Stake {
        worker_id: WorkerId,
        amount: iog_ledger::Amount,
        request_id: String,
        unstake: bool,
        reply: oneshot::Sender<Result<(StakeView, Option<UnixMs>), iog_core::StakeError>>,
    },
    /// A worker's stake, and why it would not be admitted with this many devices.
    Admission {
        worker_id: WorkerId,
        n_devices: usize,
        reply: oneshot::Sender<(StakeView, Result<(), String>)>,
    },
    /// Answers once every command sent before it is durable (for cancel).
    Barrier {
        reply: oneshot::Sender<()>,
    },
}

/// A handle to send commands to the engine.
#[derive(Clone)]
pub(crate) struct EngineHandle {
    tx: mpsc::Sender<Command>,
}

impl EngineHandle {
    pub(crate) async fn send(&self, command: Command) -> anyhow::Result<()> {
        self.tx.send(command).await.map_err(|_| anyhow::anyhow!("the coordinator engine has stopped"))
    }

    /// Passes a sealed task's wrapped key to the worker holding it under
    /// `token`; false when that lease is not current or the worker has no
    /// session.
    pub(crate) async fn deliver_key(
        &self,
        worker_id: WorkerId,
        task_id: TaskId,
        token: LeaseToken,
        wrapped: String,
    ) -> anyhow::Result<bool> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::DeliverKey { worker_id, task_id, token, wrapped, reply }).await?;
        rx.await.map_err(|_| anyhow::anyhow!("the coordinator engine has stopped"))
    }

    pub(crate) async fn event(&self, event: Event) -> anyhow::Result<()> {
        self.send(Command::Event { event, blob: None }).await
    }

    pub(crate) async fn submit(
        &self,
        job: NewJob,
        inline_inputs: Vec<Option<Arc<[u8]>>>,
        payment: Option<SubmitPayment>,
    ) -> anyhow::Result<Result<(), Rejection>> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Submit { job, inline_inputs, payment, reply }).await?;
        rx.await.map_err(|_| anyhow::anyhow!("the coordinator engine stopped before answering"))
    }

    pub(crate) async fn history(
        &self,
        account: iog_ledger::AccountId,
        limit: usize,
    ) -> anyhow::Result<Vec<iog_ledger::Entry>> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::History { account, limit, reply }).await?;
        rx.await.map_err(|_| anyhow::anyhow!("the coordinator engine stopped before answering"))
    }

    pub(crate) async fn bill(
        &self,
        job_id: JobId,
        task_idxs: Vec<u32>,
    ) -> anyhow::Result<Option<(EscrowView, Vec<TaskPaid>)>> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Bill { job_id, task_idxs, reply }).await?;
        rx.await.map_err(|_| anyhow::anyhow!("the coordinator engine stopped before answering"))
    }

    pub(crate) async fn workers(&self) -> anyhow::Result<Vec<WorkerView>> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Workers { reply }).await?;
        rx.await.map_err(|_| anyhow::anyhow!("the coordinator engine stopped before answering"))
    }

    pub(crate) async fn waiting_reason(&self, job_id: JobId) -> anyhow::Result<Option<String>> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::WaitingReason { job_id, reply }).await?;
        rx.await.map_err(|_| anyhow::anyhow!("the coordinator engine stopped before answering"))
    }

    pub(crate) async fn ledger(
        &self,
        op: iog_ledger::Op,
    ) -> anyhow::Result<Result<iog_ledger::Outcome, iog_ledger::LedgerError>> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Ledger { op, reply }).await?;
        rx.await.map_err(|_| anyhow::anyhow!("the coordinator engine stopped before answering"))
    }

    pub(crate) async fn balance(&self, account: iog_ledger::AccountId) -> anyhow::Result<iog_ledger::Balance> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Balance { account, reply }).await?;
        rx.await.map_err(|_| anyhow::anyhow!("the coordinator engine stopped before answering"))
    }

    pub(crate) async fn stake(
        &self,
        worker_id: WorkerId,
        amount: iog_ledger::Amount,
        request_id: String,
        unstake: bool,
    ) -> anyhow::Result<Result<(StakeView, Option<UnixMs>), iog_core::StakeError>> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Stake { worker_id, amount, request_id, unstake, reply }).await?;
        rx.await.map_err(|_| anyhow::anyhow!("the coordinator engine stopped before answering"))
    }

    pub(crate) async fn admission(
        &self,
        worker_id: WorkerId,
        n_devices: usize,
    ) -> anyhow::Result<(StakeView, Result<(), String>)> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Admission { worker_id, n_devices, reply }).await?;
        rx.await.map_err(|_| anyhow::anyhow!("the coordinator engine stopped before answering"))
    }

    pub(crate) async fn barrier(&self) -> anyhow::Result<()> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Barrier { reply }).await?;
        rx.await.map_err(|_| anyhow::anyhow!("the coordinator engine stopped before answering"))
    }
}

struct Session {
    session_id: u64,
    outbox: mpsc::Sender<Outgoing>,
}

/// What the engine hands a worker's session.
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Send this to the worker.
    Message(CoordinatorMessage),
    /// Run hardware challenge round `round` (the core's number) with the worker.
    Challenge { round: u64 },
}

pub(crate) struct Engine {
    core: Core,
    payments: Payments,
    store: Store,
    rx: mpsc::Receiver<Command>,
    sessions: HashMap<WorkerId, Session>,
    pending_submits: HashMap<JobId, oneshot::Sender<Result<(), Rejection>>>,
    /// Small inputs of running jobs, by job and task index.
    inline_inputs: HashMap<JobId, Vec<Option<Arc<[u8]>>>>,
    inline_inputs_bytes: usize,
    tick_interval: Duration,
    batch_max: usize,
    /// Signs checkpoints of the ledger's journal.
    signer: Option<iog_host::Identity>,
    /// Journal entries under the last signed checkpoint, and when it was signed.
    checkpointed: (usize, UnixMs),
    /// For reports of work done off the engine (spot checks); weak, so the
    /// engine still stops when every handle is dropped.
    own_tx: mpsc::WeakSender<Command>,
    /// Spot checks recompute on the coordinator's own cores: at most one
    /// per core at a time, the rest wait their turn.
    spot_slots: Arc<tokio::sync::Semaphore>,
    /// Key requests of sealed jobs, dropped when their job ends.
    keys: Arc<crate::keys::KeyDesk>,
    /// How long a key request may wait before its task is taken back.
    key_wait: Duration,
    /// When `keys` was last swept for requests that waited too long.
    keys_swept: std::time::Instant,
}

impl Engine {
    /// Tells `keys` when a job ends, so that its key requests go with it,
    /// and takes a task back from its worker when the worker's request
    /// has waited `key_wait_ms` for a key that opens it.
    pub(crate) fn with_key_desk(mut self, keys: Arc<crate::keys::KeyDesk>, key_wait_ms: u64) -> Engine {
        self.keys = keys;
        self.key_wait = Duration::from_millis(key_wait_ms);
        self
    }

    /// Turns the key requests that waited too long into events, at most
    /// about four times per wait (and at least once a second), and drops
    /// those whose lease ended.
    fn sweep_keys(&mut self, now: UnixMs, actions: &mut Vec<Action>) {
        let every = (self.key_wait / 4).min(Duration::from_secs(1));
        if self.keys_swept.elapsed() < every {
            return;
        }
        self.keys_swept = std::time::Instant::now();
        let core = &self.core;
        let overdue = self
            .keys
            .sweep(self.key_wait, |worker_id, task_id, token| core.holds_current_lease(worker_id, task_id, token));
        for o in overdue {
            tracing::info!(worker_id = %o.worker_id, task_id = %o.task_id, waited_s = o.waited.as_secs(),
                "no task key from the submitter; taking the task back");
            let waited_ms = u64::try_from(o.waited.as_millis()).unwrap_or(u64::MAX);
            let event = Event::KeyNotGiven { worker_id: o.worker_id, task_id: o.task_id, token: o.token, waited_ms };
            self.handle(event, now, actions);
        }
    }

    /// Signs checkpoints with `signer`; the store's last checkpoint covers
    /// `checkpointed` entries.
    pub(crate) fn with_signer(mut self, signer: iog_host::Identity, checkpointed: usize) -> Engine {
        self.signer = Some(signer);
        self.checkpointed = (checkpointed, 0);
        self
    }

    /// A signed checkpoint of the whole journal, when entries have waited
    /// long enough or are many enough.
    fn checkpoint_due(&self, now: UnixMs) -> Option<iog_store::SignedCheckpoint> {
        let signer = self.signer.as_ref()?;
        let journal = self.payments.ledger().journal();
        let unsigned = journal.len().saturating_sub(self.checkpointed.0);
        let waited = now.saturating_sub(self.checkpointed.1) >= CHECKPOINT_INTERVAL_MS;
        if unsigned == 0 || (unsigned < CHECKPOINT_ENTRIES_MAX && !waited) {
            return None;
        }
        let checkpoint = journal.checkpoint();
        Some(iog_store::SignedCheckpoint {
            n_entries: checkpoint.n_entries,
            head_hash: checkpoint.head_hash.to_vec(),
            signer: signer.public_key_bytes().to_vec(),
            signature: signer.sign(&checkpoint.signing_message()).to_vec(),
            signed_ms: now,
        })
    }

    pub(crate) fn new(
        core: Core,
        payments: Payments,
        store: Store,
        tick_interval_ms: u64,
        batch_max: usize,
    ) -> (Engine, EngineHandle) {
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE_MAX);
        let engine = Engine {
            core,
            payments,
            store,
            rx,
            sessions: HashMap::new(),
            pending_submits: HashMap::new(),
            inline_inputs: HashMap::new(),
            inline_inputs_bytes: 0,
            tick_interval: Duration::from_millis(tick_interval_ms),
            batch_max: batch_max.max(1),
            signer: None,
            checkpointed: (0, 0),
            own_tx: tx.downgrade(),
            spot_slots: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            )),
            keys: Arc::default(),
            key_wait: Duration::from_millis(crate::keys::KEY_WAIT_MS_DEFAULT),
            keys_swept: std::time::Instant::now(),
        };
        (engine, EngineHandle { tx })
    }

    /// Runs until every handle is dropped. A failed store write ends the
    /// process: the core has moved past what the store holds, and the only
    /// safe way on is to restart from the store.
    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(self.tick_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut batch = Vec::with_capacity(self.batch_max);
        loop {
            tokio::select! {
                n = self.rx.recv_many(&mut batch, self.batch_max) => {
                    if n == 0 {
                        return;
                    }
                }
                _ = tick.tick() => {}
            }
            if let Err(err) = self.step(std::mem::take(&mut batch)).await {
                tracing::error!(error = %err, "store write failed; stopping the coordinator so it restarts from its store");
                std::process::exit(70);
            }
        }
    }

    async fn step(&mut self, commands: Vec<Command>) -> Result<(), iog_store::StoreError> {
        let now = now_ms();
        // Every journal entry from here on is written with this batch: the
        // tick too can move money (a job that fails on it voids its escrow).
        let journal_before = self.payments.ledger().journal().len();
        let mut actions = Vec::new();
        self.handle(Event::Tick, now, &mut actions);
        self.sweep_keys(now, &mut actions);
        self.payments.release_unstaked(now);
        self.pay_rewards(now);
        let mut barriers = Vec::new();
        let mut blobs: Vec<InlineBlob> = Vec::new();
        let mut ledger_replies = Vec::new();
        let mut balance_replies = Vec::new();
        let mut refused_submits = Vec::new();
        let mut stake_replies = Vec::new();
        let mut admission_replies = Vec::new();
        for command in commands {
            match command {
                Command::Event { event, blob } => {
                    blobs.extend(blob);
                    self.handle(event, now, &mut actions);
                }
                Command::Submit { job, inline_inputs, payment, reply } => {
                    if let Some(payment) = payment {
                        let held = self.payments.hold_escrow(job.job_id, &payment.request_id, &payment.terms, now);
                        if let Err(err) = held {
                            // The refusal may be a journal entry: answered after the commit.
                            let code = err.code();
                            refused_submits.push((reply, Rejection { code, message: err.to_string() }));
                            continue;
                        }
                    }
                    for (input, bytes) in job.inputs.iter().zip(&inline_inputs) {
                        if let Some(bytes) = bytes {
                            blobs.push((*input, bytes.clone()));
                        }
                    }
                    let size: usize = inline_inputs.iter().flatten().map(|b| b.len()).sum();
                    // A chained job's later tasks are made as it goes, from
                    // the store: assignments look inputs up by task index
                    // here, so only a job planned whole keeps them.
                    if job.chain.is_none() && self.inline_inputs_bytes + size <= INLINE_INPUTS_BYTES_MAX {
                        self.inline_inputs_bytes += size;
                        self.inline_inputs.insert(job.job_id, inline_inputs);
                    }
                    self.pending_submits.insert(job.job_id, reply);
                    self.handle(Event::JobSubmitted(job), now, &mut actions);
                }
                Command::Connect { worker_id, session_id, offer, held, outbox } => {
                    tracing::info!(
                        worker_id = %worker_id,
                        session_id,
                        devices = offer.n_devices(),
                        region = %offer.region,
                        price = %offer.price_io_per_device_hour,
                        "worker connected"
                    );
                    if let Some(old) = self.sessions.insert(worker_id.clone(), Session { session_id, outbox }) {
                        tracing::info!(worker_id = %worker_id, old_session_id = old.session_id, "session replaced");
                    }
                    let trust = self.trust_of(&worker_id, &offer);
                    self.handle(Event::WorkerConnected { worker_id, offer, trust, running: held }, now, &mut actions);
                }
                Command::WaitingReason { job_id, reply } => {
                    let _ = reply.send(self.core.waiting_reason(job_id));
                }
                Command::Disconnect { worker_id, session_id } => {
                    if self.sessions.get(&worker_id).is_some_and(|s| s.session_id == session_id) {
                        self.sessions.remove(&worker_id);
                        tracing::info!(worker_id = %worker_id, "worker disconnected");
                        self.handle(Event::WorkerDisconnected { worker_id }, now, &mut actions);
                    }
                }
                Command::DeliverKey { worker_id, task_id, token, wrapped, reply } => {
                    // Checked against the core, not the store: a lease that
                    // ended a moment ago gets no key.
                    let current = self.core.holds_current_lease(&worker_id, task_id, token)
                        && self.sessions.contains_key(&worker_id);
                    if current {
                        // Marked here, not after the reply, so no sweep
                        // between the two can take the task back.
                        self.keys.given(task_id, token);
                        self.send(&worker_id, CoordinatorMessage::TaskKey { task_id, token, wrapped });
                    }
                    let _ = reply.send(current);
                }
                Command::Workers { reply } => {
                    let _ = reply.send(self.core.workers());
                }
                Command::Barrier { reply } => barriers.push(reply),
                Command::Stake { worker_id, amount, request_id, unstake, reply } => {
                    let result = if unstake {
                        self.payments.unstake(&worker_id.0, amount, &request_id, now).map(Some)
                    } else {
                        self.payments.stake(&worker_id.0, amount, &request_id, now).map(|()| None)
                    };
                    let view = self.payments.stake_of(&worker_id.0);
                    stake_replies.push((reply, result.map(|due| (view, due))));
                }
                // Answered after the commit, like a balance.
                Command::Admission { worker_id, n_devices, reply } => {
                    let admitted = self.payments.admission(&worker_id.0, n_devices);
                    admission_replies.push((reply, (self.payments.stake_of(&worker_id.0), admitted)));
                }
                Command::Ledger { op, reply } => ledger_replies.push((reply, self.payments.apply(op, now))),
                // Answered after the commit, so no balance shows what is not yet durable.
                Command::Balance { account, reply } => {
                    balance_replies.push((reply, self.payments.ledger().balance(&account)))
                }
                // Entries of earlier batches only: those are durable.
                Command::History { account, limit, reply } => {
                    let durable =
                        self.payments.ledger().history(&account).filter(|e| (e.seq as usize) < journal_before);
                    let _ = reply.send(durable.take(limit).cloned().collect());
                }
                Command::Bill { job_id, task_idxs, reply } => {
                    let bill = self.payments.escrow(job_id).map(|escrow| {
                        let paid = task_idxs.iter().map(|&idx| self.payments.task_paid(job_id, idx)).collect();
                        (escrow, paid)
                    });
                    let _ = reply.send(bill);
                }
            }
        }
        let changes: Vec<_> = actions
            .iter()
            .filter_map(|action| match action {
                Action::Persist(change) => Some(change.clone()),
                _ => None,
            })
            .collect();
        let journal: Vec<(u64, Vec<u8>)> = self.payments.ledger().journal().entries()[journal_before..]
            .iter()
            .map(|entry| (entry.seq, entry.encode()))
            .collect();
        let checkpoint = self.checkpoint_due(now);
        self.store.apply_batch(&changes, &blobs, &journal, checkpoint.as_ref()).await?;
        if let Some(checkpoint) = checkpoint {
            self.checkpointed = (checkpoint.n_entries as usize, now);
        }
        for (reply, rejection) in refused_submits {
            let _ = reply.send(Err(rejection));
        }
        for (reply, result) in stake_replies {
            let _ = reply.send(result);
        }
        for (reply, admission) in admission_replies {
            let _ = reply.send(admission);
        }
        for (reply, outcome) in ledger_replies {
            let _ = reply.send(outcome);
        }
        for (reply, balance) in balance_replies {
            let _ = reply.send(balance);
        }
        for action in actions {
            self.perform(action);
        }
        for barrier in barriers {
            let _ = barrier.send(());
        }
        Ok(())
    }

    fn perform(&mut self, action: Action) {
        match action {
            Action::Persist(_) => {}
            Action::Assign { worker_id, task_id, token, input } => {
                tracing::debug!(worker_id = %worker_id, task_id = %task_id, token = token.0, "lease granted");
                // A replica of verification (index i + r·n) runs task i's input.
                let input_bytes = self
                    .inline_inputs
                    .get(&task_id.job_id)
                    .and_then(|inputs| inputs.get(task_id.task_idx as usize % inputs.len().max(1)))
                    .and_then(|bytes| bytes.as_ref())
                    .map(|bytes| bytes.to_vec());
                let message = CoordinatorMessage::Assign { task_id, token, input, input_bytes };
                self.send(&worker_id, message);
            }
            Action::Revoke { worker_id, task_id, token, reason } => {
                self.send(&worker_id, CoordinatorMessage::Revoke { task_id, token, reason });
            }
            Action::ResultReply { worker_id, task_id, token, outcome } => {
                let outcome = outcome.as_str().to_owned();
                self.send(&worker_id, CoordinatorMessage::ResultAck { task_id, token, outcome });
            }
            Action::JobFinished { job_id, state } => {
                tracing::info!(job_id = %job_id, state = %state, "job finished");
                self.keys.forget_job(job_id);
                if let Some(inputs) = self.inline_inputs.remove(&job_id) {
                    self.inline_inputs_bytes -= inputs.iter().flatten().map(|b| b.len()).sum::<usize>();
                }
                if state == JobState::Done {
                    let store = self.store.clone();
                    tokio::spawn(async move { assemble::assemble_and_log(store, job_id).await });
                }
            }
            Action::SpotCheck { task_id, input, output, seed } => {
                let (store, engine, slots) = (self.store.clone(), self.own_tx.clone(), self.spot_slots.clone());
                tokio::spawn(async move {
                    // The semaphore is never closed.
                    let Ok(_slot) = slots.acquire_owned().await else { return };
                    crate::spot::check_and_report(store, engine, task_id, input, output, seed).await;
                });
            }
            Action::ChainInput { job_id, task_idx, previous } => {
                let (store, engine) = (self.store.clone(), self.own_tx.clone());
                tokio::spawn(crate::chain::make_and_report(store, engine, job_id, task_idx, previous));
            }
            Action::CompareOutputs { task_id, input, outputs } => {
                let (store, engine, slots) = (self.store.clone(), self.own_tx.clone(), self.spot_slots.clone());
                tokio::spawn(async move {
                    // The semaphore is never closed.
                    let Ok(_slot) = slots.acquire_owned().await else { return };
                    crate::spot::compare_and_report(store, engine, task_id, input, outputs).await;
                });
            }
            // Not connected: the core starts a new round when it reconnects.
            Action::Challenge { worker_id, round } => self.hand(&worker_id, Outgoing::Challenge { round }),
            Action::SlashStake { worker_id, bps, reason_key } => {
                // The payments applied it already; its journal entry is in this batch.
                tracing::warn!(worker_id = %worker_id, bps, reason = reason_key, "stake slashed");
            }
            Action::WorkerDead { worker_id } => {
                tracing::warn!(worker_id = %worker_id, "worker missed its heartbeats; its leases lapsed");
                // Dropping the outbox closes the session; a live worker reconnects.
                self.sessions.remove(&worker_id);
            }
            Action::JobAccepted { job_id } => {
                if let Some(reply) = self.pending_submits.remove(&job_id) {
                    let _ = reply.send(Ok(()));
                }
            }
            Action::JobRejected { job_id, reason } => {
                if let Some(reply) = self.pending_submits.remove(&job_id) {
                    let _ = reply.send(Err(Rejection { code: "job_rejected", message: reason }));
                }
            }
        }
    }

    /// At the end of a rewards epoch, shares its rewards among the workers
    /// online then (each was admitted, stake included, when it connected).
    fn pay_rewards(&mut self, now: UnixMs) {
        let Some(epoch) = self.payments.reward_epoch_due(now) else { return };
        let workers: Vec<String> =
            self.core.workers().into_iter().filter(|w| w.connected).map(|w| w.worker_id.0).collect();
        match self.payments.pay_rewards(epoch, &workers, now) {
            Ok(share) => tracing::info!(epoch, n_workers = workers.len(), share = %share, "rewards paid"),
            Err(err) => tracing::error!(epoch, error = %err, "rewards could not be paid"),
        }
    }

    /// The trust level placement gives a worker: 1 when the network asks
    /// for stake and the worker's active stake covers its devices, 0
    /// otherwise. Levels above 1 come from hardware challenges and
    /// verified results.
    fn trust_of(&self, worker_id: &WorkerId, offer: &iog_sched::Offer) -> u8 {
        let rules = self.payments.stake_rules();
        let per_device = rules.min_per_device;
        let needed = per_device
            .checked_mul_div(u64::from(offer.n_physical_devices().max(1)), 1)
            .unwrap_or(iog_ledger::Amount::MAX);
        let active = self.payments.stake_of(&worker_id.0).active;
        u8::from(!per_device.is_zero() && active >= needed)
    }

    /// Hands an event to the core and the core's actions to payments, which
    /// may answer with events of their own (an escrow ran dry), until no
    /// event is left. Every action lands in `actions`, in order.
    fn handle(&mut self, event: Event, now: UnixMs, actions: &mut Vec<Action>) {
        let mut events = vec![event];
        while let Some(event) = events.pop() {
            let out = self.core.handle(event, now);
            events.extend(out.iter().filter_map(|action| self.payments.settle(action, now)));
            actions.extend(out);
        }
    }

    /// Sends a message to a worker. Without a session it is dropped: a lease
    /// lapses at the worker's deadline, a result is sent again by the worker
    /// when it reconnects.
    fn send(&mut self, worker_id: &WorkerId, message: CoordinatorMessage) {
        self.hand(worker_id, Outgoing::Message(message));
    }

    /// Hands something to a worker's session, if it has one.
    fn hand(&mut self, worker_id: &WorkerId, outgoing: Outgoing) {
        let Some(session) = self.sessions.get(worker_id) else { return };
        if session.outbox.try_send(outgoing).is_err() {
            tracing::warn!(worker_id = %worker_id, "worker's outbox is full or closed; closing its session");
            self.sessions.remove(worker_id);
        }
    }
}
