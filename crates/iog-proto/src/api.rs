//! Bodies of the REST API. Every error crosses the API as [`ApiError`].

use iog_types::{BlobId, Device, JobId, JobState, TaskId, TaskState, WorkerId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

/// The schema of a string that is one of `values`.
fn string_enum_schema<const N: usize>(description: &str, values: [&str; N]) -> Object {
    ObjectBuilder::new().schema_type(Type::String).description(Some(description)).enum_values(Some(values)).build()
}

/// The schema of a [`JobState`], as the API writes it.
fn job_state_schema() -> Object {
    let states = [JobState::Running, JobState::Done, JobState::Failed, JobState::Cancelled];
    string_enum_schema(
        "Where the job is in its life; `done`, `failed` and `cancelled` are final.",
        states.map(JobState::as_str),
    )
}

/// The schema of a [`TaskState`], as the API writes it.
fn task_state_schema() -> Object {
    let states = [TaskState::Queued, TaskState::Leased, TaskState::Committed, TaskState::Failed, TaskState::Cancelled];
    string_enum_schema(
        "Where the task is in its life; `committed`, `failed` and `cancelled` are final.",
        states.map(TaskState::as_str),
    )
}

/// An error answer: a stable machine-readable `code` and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiError {
    /// What went wrong, for programs: stable, in snake case, such as `job_not_found`.
    pub code: String,
    /// What went wrong and what to do about it, for people.
    pub message: String,
}

/// `POST /v1/jobs`: the job spec as JSON (a job file with scene files inlined).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SubmitJob {
    /// Kept as the exact bytes sent: a payer signs their hash, and the
    /// coordinator stores them as they came.
    #[schema(value_type = Object)]
    pub spec: Box<serde_json::value::RawValue>,
    /// The payer's signature, required when the spec has a `[payment]`
    /// section: nobody spends a wallet without its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<PaymentAuthorization>,
}

/// A wallet's consent to pay for one submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PaymentAuthorization {
    /// Chosen by the submitter, `t-<32 hex>`; a wallet's escrow for one
    /// request id is held once, so a replayed submission is refused.
    pub request_id: String,
    /// Hex of the ed25519 signature by the wallet named in
    /// `spec.payment.wallet` over [`submit_signing_message`].
    pub signature: String,
}

/// What a payer signs to submit a paid job: the request id and the blake3
/// hash of the spec's JSON exactly as sent in [`SubmitJob::spec`].
pub fn submit_signing_message(request_id: &str, spec_json: &[u8]) -> Vec<u8> {
    format!("iog job submit v1\n{request_id}\n{}\n", blake3::hash(spec_json).to_hex()).into_bytes()
}

/// What a wallet signs to send $IO: every field of the request.
pub fn send_signing_message(from: &str, to: &str, amount_base_units: u64, request_id: &str) -> Vec<u8> {
    format!("iog wallet send v1\n{from}\n{to}\n{amount_base_units}\n{request_id}\n").into_bytes()
}

/// Answer to a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubmittedJob {
    /// The job's id, chosen at random by the coordinator.
    #[schema(value_type = String, pattern = "^j-[0-9a-f]{16}$", example = "j-0123456789abcdef")]
    pub job_id: JobId,
    /// Tasks in the job's plan.
    pub n_tasks: u32,
}

/// Counts of a job's tasks by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskCounts {
    /// Tasks waiting for a worker.
    pub queued: u32,
    /// Tasks a worker holds under a lease.
    pub leased: u32,
    /// Tasks whose result is recorded.
    pub committed: u32,
    /// Tasks that exhausted their attempts.
    pub failed: u32,
    /// Tasks whose job ended before they committed.
    pub cancelled: u32,
}

/// What one worker did for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkerShare {
    #[schema(value_type = String, example = "6MXwkPPy2pDsJDnqcUKmEJBtQY1Ryp5PAyfFjdyNd6hM")]
    pub worker_id: WorkerId,
    /// Tasks of this job the worker committed.
    pub n_committed: u32,
    /// Tasks of this job the worker holds right now.
    pub n_leased: u32,
    /// Sum of the committed tasks' run times.
    pub busy_ms: u64,
    /// Its results for this job that verification proved wrong.
    #[serde(default)]
    pub n_wrong: u32,
}

/// One final output of a done job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Artifact {
    /// The file name to save it under, such as `image.png`.
    pub name: String,
    /// Its media type, such as `image/png`.
    pub media_type: String,
    #[schema(
        value_type = String,
        pattern = "^[0-9a-f]{64}$",
        example = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
    )]
    pub blob: BlobId,
    /// Its size.
    pub size_bytes: u64,
}

/// `GET /v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobStatus {
    #[schema(value_type = String, pattern = "^j-[0-9a-f]{16}$", example = "j-0123456789abcdef")]
    pub job_id: JobId,
    /// The name its spec gives it.
    pub name: String,
    /// What it runs, such as `render` or `hash`.
    pub workload: String,
    #[schema(schema_with = job_state_schema)]
    pub state: JobState,
    /// Why the job failed or was cancelled.
    pub reason: Option<String>,
    /// Tasks in the job's plan. `tasks` counts every run, replicas of
    /// verification included.
    pub n_tasks: u32,
    /// How its results are checked: `none`, `replicate 2 of 5`, `adaptive of 5`.
    #[serde(default)]
    pub verify: String,
    /// Tasks whose result is accepted (done when it reaches `n_tasks`).
    #[serde(default)]
    pub n_settled: u32,
    pub tasks: TaskCounts,
    /// What each worker that held its tasks did for it.
    pub workers: Vec<WorkerShare>,
    /// When it was accepted, Unix milliseconds.
    pub created_ms: u64,
    /// When it ended, Unix milliseconds; null while it runs.
    pub ended_ms: Option<u64>,
    /// Present once a done job's outputs are assembled. A sealed job has
    /// none: its submitter's client opens and assembles the results.
    pub artifacts: Vec<Artifact>,
    /// Whether the job's inputs and results are sealed to its submitter and
    /// the workers that run it (the coordinator sees only ciphertext).
    #[serde(default)]
    pub sealed: bool,
    /// Why tasks of a running job wait: no worker offers what they need
    /// (the reason names the constraint), or every device that fits is busy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
}

impl JobStatus {
    /// Final and, when done, with its artifacts ready to download.
    pub fn is_settled(&self) -> bool {
        self.state.is_final() && (self.state != iog_types::JobState::Done || self.sealed || !self.artifacts.is_empty())
    }
}

/// `GET /v1/jobs/{id}/key-requests`: a worker that holds a task of one's
/// sealed job asks for its task key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyRequest {
    #[schema(value_type = String, pattern = "^j-[0-9a-f]{16}/[0-9]+$", example = "j-0123456789abcdef/0")]
    pub task_id: TaskId,
    /// The lease the worker holds the task under.
    pub token: u64,
    #[schema(value_type = String, example = "6MXwkPPy2pDsJDnqcUKmEJBtQY1Ryp5PAyfFjdyNd6hM")]
    pub worker_id: WorkerId,
    /// Hex of the worker's x25519 seal key.
    pub seal_key: String,
    /// Hex of the worker's ed25519 signature over
    /// `iog_seal::seal_key_signing_message(worker_id, seal_key)`: check it
    /// before wrapping a key to `seal_key`.
    pub seal_key_signature: String,
}

/// `POST /v1/jobs/{id}/task-keys`: one task key, wrapped to the worker that
/// asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskKeyGrant {
    #[schema(value_type = String, pattern = "^j-[0-9a-f]{16}/[0-9]+$", example = "j-0123456789abcdef/0")]
    pub task_id: TaskId,
    /// The lease of the request it answers.
    pub token: u64,
    #[schema(value_type = String, example = "6MXwkPPy2pDsJDnqcUKmEJBtQY1Ryp5PAyfFjdyNd6hM")]
    pub worker_id: WorkerId,
    /// Hex of the `iog_seal::WrappedKey`, wrapped under
    /// `iog_seal::task_context(job, task_idx, worker_id)`.
    pub wrapped: String,
}

/// Answer to `POST /v1/jobs/{id}/task-keys`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GrantOutcome {
    /// Keys passed on to the worker's session.
    pub delivered: u32,
    /// Keys for leases that are no longer current, or for a worker that is
    /// not connected now (it asks again when it reconnects); dropped.
    pub stale: u32,
}

/// `GET /v1/jobs/{id}/tasks`: one entry per task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskStatus {
    #[schema(value_type = String, pattern = "^j-[0-9a-f]{16}/[0-9]+$", example = "j-0123456789abcdef/0")]
    pub task_id: TaskId,
    #[schema(schema_with = task_state_schema)]
    pub state: TaskState,
    /// Leases it had so far.
    pub attempts: u32,
    /// The worker that holds it now.
    #[schema(value_type = Option<String>)]
    pub holder: Option<WorkerId>,
    /// Why its last attempt failed.
    pub last_error: Option<String>,
    /// The worker whose result is recorded.
    #[schema(value_type = Option<String>)]
    pub committed_by: Option<WorkerId>,
    /// The recorded result's blob.
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{64}$")]
    pub output: Option<BlobId>,
    /// How long the committed attempt ran.
    pub duration_ms: Option<u64>,
    /// The device the committed attempt ran on, as its worker names it:
    /// `cpu0`, `gpu0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// What the committing lease paid per hour, like `0.5 IO`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_io_per_hour: Option<String>,
    /// Verification's verdict on its result: `valid` (accepted and paid)
    /// or `wrong` (proven wrong by a quorum; never paid); absent until
    /// decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// For a task of the plan whose result is accepted: that result (which
    /// may be another replica's output).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, pattern = "^[0-9a-f]{64}$")]
    pub accepted_output: Option<BlobId>,
}

/// `GET /v1/workers`: one entry per worker that ever joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WorkerStatus {
    #[schema(value_type = String, example = "6MXwkPPy2pDsJDnqcUKmEJBtQY1Ryp5PAyfFjdyNd6hM")]
    pub worker_id: WorkerId,
    /// Its stream is connected now.
    pub online: bool,
    /// The version of iog it runs.
    pub agent_version: String,
    /// The devices it found on its host.
    #[schema(value_type = Vec<Object>)]
    pub devices: Vec<Device>,
    /// What it offers (the last offer it made, when offline).
    #[schema(value_type = Option<Object>)]
    pub offer: Option<iog_sched::Offer>,
    /// Devices of each offered group that run tasks now.
    #[serde(default)]
    pub in_use: Vec<u32>,
    /// Trust level placement sees (0 = unknown, 1 = staked).
    #[serde(default)]
    pub trust: u8,
    /// The owner is using the machine.
    #[serde(default)]
    pub paused: bool,
    /// Round-trip time to the coordinator the worker last reported.
    #[serde(default)]
    pub rtt_ms: u32,
    /// Its network coordinate (Vivaldi) as it last reported it, from round
    /// trips to peers; the estimated latency between two workers is
    /// [`iog_sched::Coord::distance_ms`] of theirs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub coord: Option<iog_sched::Coord>,
    /// Hardware challenges passed and failed since the coordinator started,
    /// and failed in a row now (while above 0 it takes no new tasks).
    #[serde(default)]
    pub challenges_passed: u32,
    #[serde(default)]
    pub challenges_failed: u32,
    #[serde(default)]
    pub challenges_failed_in_row: u32,
    /// A hardware challenge is under way.
    #[serde(default)]
    pub challenging: bool,
    /// Its reputation score, 0 to 1000 (500: no record), which placement
    /// ranks by, and the outcomes it comes from, since the coordinator started.
    #[serde(default)]
    pub reputation_milli: u16,
    #[serde(default)]
    pub tasks_committed: u64,
    #[serde(default)]
    pub tasks_failed: u64,
    #[serde(default)]
    pub leases_lapsed: u64,
    #[serde(default)]
    pub online_hours: u64,
    /// Results another worker's confirmed, results a quorum proved wrong,
    /// and confirmed results since the last wrong one.
    #[serde(default)]
    pub results_valid: u64,
    #[serde(default)]
    pub results_wrong: u64,
    #[serde(default)]
    pub valid_streak: u64,
    /// Online, not paused and inside its hours: it can take tasks.
    #[serde(default)]
    pub available: bool,
    /// Leases it holds now.
    pub n_leases: u32,
    /// When it first joined, Unix milliseconds.
    pub first_seen_ms: u64,
    /// When it was last heard from (now, while online), Unix milliseconds.
    pub last_seen_ms: u64,
}

/// `GET /v1/market?q=…`: device groups of online workers that match a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Market {
    /// The query in its normal form (empty: everything).
    pub query: String,
    /// The matching groups, cheapest first.
    pub offers: Vec<MarketOffer>,
    /// Matching groups left out beyond the listing's limit.
    pub n_more: u32,
}

/// One device group on the market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MarketOffer {
    #[schema(value_type = String, example = "6MXwkPPy2pDsJDnqcUKmEJBtQY1Ryp5PAyfFjdyNd6hM")]
    pub worker_id: WorkerId,
    /// Where the worker is, as its owner names it.
    pub region: String,
    /// Asked per device-hour, like `0.8 IO`.
    pub price_io_per_device_hour: String,
    /// The identical devices offered together.
    #[schema(value_type = Object)]
    pub group: iog_sched::DeviceGroup,
    /// Devices of the group not running a task now.
    pub free: u32,
    /// Trust level placement sees (0 = unknown, 1 = staked).
    pub trust: u8,
    /// The worker takes tasks only while its owner is away.
    pub idle_only: bool,
    /// Takes tasks now (connected, owner away, inside its hours).
    pub available: bool,
    /// Software the worker runs jobs with, as `name version` (`process
    /// bubblewrap cgroup-v1`, `python3 3.11.2`); what `runs=` searches.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub software: Vec<String>,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
    /// The coordinator's version.
    pub version: String,
    /// The version of the worker stream protocol it speaks.
    pub protocol_version: u32,
    /// The base58 ed25519 public key that signs the ledger's checkpoints.
    #[serde(default)]
    pub ledger_signer: String,
}

/// `GET /v1/wallets/{address}`: a wallet's balance, amounts written like `1.5 IO`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WalletStatus {
    /// The wallet's address.
    pub address: String,
    /// What the wallet can spend now.
    pub available: String,
    /// Settled balance (available plus what is held).
    pub posted: String,
    /// Held for pending transfers (job escrows).
    pub held: String,
}

/// `POST /v1/wallets/{address}/send`: moves $IO to another wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SendRequest {
    /// The receiving wallet's address.
    pub to: String,
    /// How much, e.g. `"5"` or `"0.25 IO"`.
    pub amount: String,
    /// Makes a retried request safe: the same id sends once. Written `t-<32 hex>`.
    pub request_id: String,
    /// Hex of the sender's ed25519 signature over [`send_signing_message`],
    /// with the amount in base units.
    pub signature: String,
}

/// `POST /v1/workers/{worker_id}/stake`, `…/unstake` and `…/withdraw`,
/// signed by the worker's own key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StakeRequest {
    /// How much, e.g. `"5"` or `"0.25 IO"`.
    pub amount: String,
    /// Makes a retried request safe. Written `t-<32 hex>`.
    pub request_id: String,
    /// Hex of the worker's ed25519 signature over [`worker_signing_message`].
    pub signature: String,
}

/// What a worker signs to `stake`, `unstake` or `withdraw` (its earnings,
/// from its payout account to its own wallet).
pub fn worker_signing_message(worker_id: &str, verb: &str, amount_base_units: u64, request_id: &str) -> Vec<u8> {
    format!("iog worker {verb} v1\n{worker_id}\n{amount_base_units}\n{request_id}\n").into_bytes()
}

/// `GET /v1/workers/{worker_id}/stake` and the answer to staking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StakeStatus {
    pub worker_id: String,
    /// Counts toward admission and can be slashed.
    pub active: String,
    /// On its way back to the worker's wallet; still slashable.
    pub unstaking: String,
    /// When an unstaking just asked for reaches the wallet (Unix ms).
    pub unstaked_at_ms: Option<u64>,
    /// What this network asks per device.
    pub min_per_device: String,
}

/// `GET /v1/accounts/{account}`: any ledger account's balances (a worker's
/// earnings are `payout:<worker id>`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccountStatus {
    pub account: String,
    pub available: String,
    pub posted: String,
    /// Held by open holds that debit the account.
    pub held: String,
    /// Held by open holds that credit the account: coming, not yet usable.
    pub incoming: String,
}

/// `GET /v1/accounts/{account}/history`: the operations that touched an
/// account, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HistoryEntry {
    /// The journal entry's sequence number.
    pub seq: u64,
    pub at_ms: u64,
    pub transfer_id: String,
    /// `transfer`, `hold`, `post`, `void` or `mint`.
    pub kind: String,
    /// The operation as the journal prints it.
    pub description: String,
    /// The error code when the ledger refused it.
    pub refused: Option<String>,
}

/// `GET /v1/ledger/journal?after=SEQ&limit=N`: journal entries in order,
/// each in the ledger's canonical encoding, base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JournalPage {
    pub entries: Vec<JournalRow>,
    /// Ask again with `after` set to this for the next page; `None` at the end.
    pub next_after: Option<u64>,
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JournalRow {
    pub seq: u64,
    /// The entry in the ledger's canonical encoding, base64.
    #[serde(with = "crate::inline_bytes::required")]
    #[schema(value_type = String, content_encoding = "base64")]
    pub entry: Vec<u8>,
}

/// `GET /v1/ledger/checkpoints`: the journal's signed checkpoints, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointRow {
    pub n_entries: u64,
    /// Hex.
    pub head_hash: String,
    /// Base58 ed25519 public key.
    pub signer: String,
    /// Hex.
    pub signature: String,
    pub signed_ms: u64,
}

/// `GET /v1/jobs/{id}/billing`: what a paid job has cost so far.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobBilling {
    #[schema(value_type = String, pattern = "^j-[0-9a-f]{16}$", example = "j-0123456789abcdef")]
    pub job_id: JobId,
    pub payer: String,
    pub budget: String,
    /// The most paid per device-hour (each task pays its worker's price).
    pub price_io_per_hour: String,
    /// The most one task pays per hour for all its devices.
    #[serde(default)]
    pub price_io_per_task_hour_max: String,
    /// Paid out of escrow so far (workers and fee).
    pub spent: String,
    /// Of `spent`, what went to the network's fee account.
    pub fees: String,
    /// Still held; returned to the payer when the job ends.
    pub held: String,
    /// Returned to the payer when the job ended.
    pub refunded: String,
    pub workers: Vec<WorkerEarning>,
}

/// What one worker earned from one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WorkerEarning {
    pub worker_id: String,
    pub n_paid: u32,
    pub billed_ms: u64,
    pub earned: String,
}

/// `POST /v1/wallets/{address}/faucet` on a development network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FaucetRequest {
    /// How much, e.g. `"5"` or `"0.25 IO"`.
    pub amount: String,
    /// Makes a retried request safe: the same id grants once. Written `t-<32 hex>`.
    pub request_id: String,
}
