//! Bodies of the REST API. Every error crosses the API as [`ApiError`].

use iog_types::{BlobId, Device, JobId, JobState, TaskId, TaskState, WorkerId};
use serde::{Deserialize, Serialize};

/// An error answer: a stable machine-readable `code` and a message for people.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

/// `POST /v1/jobs`: the job spec as JSON (a job file with scene files inlined).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmitJob {
    /// Kept as the exact bytes sent: a payer signs their hash, and the
    /// coordinator stores them as they came.
    pub spec: Box<serde_json::value::RawValue>,
    /// The payer's signature, required when the spec has a `[payment]`
    /// section: nobody spends a wallet without its key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization: Option<PaymentAuthorization>,
}

/// A wallet's consent to pay for one submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmittedJob {
    pub job_id: JobId,
    pub n_tasks: u32,
}

/// Counts of a job's tasks by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskCounts {
    pub queued: u32,
    pub leased: u32,
    pub committed: u32,
    pub failed: u32,
    pub cancelled: u32,
}

/// What one worker did for a job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerShare {
    pub worker_id: WorkerId,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artifact {
    pub name: String,
    pub media_type: String,
    pub blob: BlobId,
    pub size_bytes: u64,
}

/// `GET /v1/jobs/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobStatus {
    pub job_id: JobId,
    pub name: String,
    pub workload: String,
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
    pub workers: Vec<WorkerShare>,
    pub created_ms: u64,
    pub ended_ms: Option<u64>,
    /// Present once a done job's outputs are assembled.
    pub artifacts: Vec<Artifact>,
    /// Why tasks of a running job wait: no worker offers what they need
    /// (the reason names the constraint), or every device that fits is busy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
}

impl JobStatus {
    /// Final and, when done, with its artifacts ready to download.
    pub fn is_settled(&self) -> bool {
        self.state.is_final() && (self.state != iog_types::JobState::Done || !self.artifacts.is_empty())
    }
}

/// `GET /v1/jobs/{id}/tasks`: one entry per task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStatus {
    pub task_id: TaskId,
    pub state: TaskState,
    pub attempts: u32,
    pub holder: Option<WorkerId>,
    pub last_error: Option<String>,
    pub committed_by: Option<WorkerId>,
    pub output: Option<BlobId>,
    pub duration_ms: Option<u64>,
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
    pub accepted_output: Option<BlobId>,
}

/// `GET /v1/workers`: one entry per worker that ever joined.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub worker_id: WorkerId,
    pub online: bool,
    pub agent_version: String,
    pub devices: Vec<Device>,
    /// What it offers (the last offer it made, when offline).
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
    pub n_leases: u32,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

/// `GET /v1/market?q=…`: device groups of online workers that match a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Market {
    /// The query in its normal form (empty: everything).
    pub query: String,
    pub offers: Vec<MarketOffer>,
    /// Matching groups left out beyond the listing's limit.
    pub n_more: u32,
}

/// One device group on the market.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MarketOffer {
    pub worker_id: WorkerId,
    pub region: String,
    /// Asked per device-hour, like `0.8 IO`.
    pub price_io_per_device_hour: String,
    pub group: iog_sched::DeviceGroup,
    /// Devices of the group not running a task now.
    pub free: u32,
    pub trust: u8,
    pub idle_only: bool,
    /// Takes tasks now (connected, owner away, inside its hours).
    pub available: bool,
}

/// `GET /v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    pub status: String,
    pub version: String,
    pub protocol_version: u32,
    /// The base58 ed25519 public key that signs the ledger's checkpoints.
    #[serde(default)]
    pub ledger_signer: String,
}

/// `GET /v1/wallets/{address}`: a wallet's balance, amounts written like `1.5 IO`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WalletStatus {
    pub address: String,
    /// What the wallet can spend now.
    pub available: String,
    /// Settled balance (available plus what is held).
    pub posted: String,
    /// Held for pending transfers (job escrows).
    pub held: String,
}

/// `POST /v1/wallets/{address}/send`: moves $IO to another wallet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalPage {
    pub entries: Vec<JournalRow>,
    /// Ask again with `after` set to this for the next page; `None` at the end.
    pub next_after: Option<u64>,
}

/// One journal entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRow {
    pub seq: u64,
    #[serde(with = "crate::inline_bytes::required")]
    pub entry: Vec<u8>,
}

/// `GET /v1/ledger/checkpoints`: the journal's signed checkpoints, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobBilling {
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkerEarning {
    pub worker_id: String,
    pub n_paid: u32,
    pub billed_ms: u64,
    pub earned: String,
}

/// `POST /v1/wallets/{address}/faucet` on a development network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaucetRequest {
    /// How much, e.g. `"5"` or `"0.25 IO"`.
    pub amount: String,
    /// Makes a retried request safe: the same id grants once. Written `t-<32 hex>`.
    pub request_id: String,
}
