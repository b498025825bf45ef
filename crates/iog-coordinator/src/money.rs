//! The API's money endpoints beyond a wallet's balance: signed sends,
//! account balances and histories, a job's bill, and the checks that let a
//! wallet's key, and nothing else, spend it.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use ed25519_dalek::{Signature, VerifyingKey};
use iog_ledger::{AccountId, Address, Amount, Entry, Op, TransferId};
use iog_proto::api::{
    AccountStatus, CheckpointRow, HistoryEntry, JobBilling, JournalPage, JournalRow, SendRequest, StakeRequest,
    StakeStatus, WalletStatus, WorkerEarning,
};
use serde::Deserialize;

use crate::api::{Failure, parse_address, wallet_status};
use crate::auth::Caller;
use crate::server::AppState;

/// Most history entries one request returns.
const HISTORY_MAX: usize = 1_000;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/wallets/{address}/send", post(send))
        .route("/v1/accounts/{account}", get(account))
        .route("/v1/accounts/{account}/history", get(history))
        .route("/v1/jobs/{job_id}/billing", get(billing))
        .route("/v1/workers/{worker_id}/stake", get(stake_status).post(stake))
        .route("/v1/workers/{worker_id}/unstake", post(unstake))
        .route("/v1/workers/{worker_id}/withdraw", post(withdraw))
        .route("/v1/ledger/journal", get(journal))
        .route("/v1/ledger/checkpoints", get(checkpoints))
}

/// Most journal entries one page holds.
const JOURNAL_PAGE_MAX: u32 = 10_000;

#[derive(Deserialize)]
struct JournalQuery {
    after: Option<u64>,
    limit: Option<u32>,
}

/// The journal as the store holds it: everything here is durable.
async fn journal(
    State(state): State<AppState>,
    Query(query): Query<JournalQuery>,
) -> Result<Json<JournalPage>, Failure> {
    let limit = query.limit.unwrap_or(JOURNAL_PAGE_MAX).clamp(1, JOURNAL_PAGE_MAX);
    let rows = state.store.journal_page(query.after, limit).await?;
    let next_after = (rows.len() == limit as usize).then(|| rows.last().map(|(seq, _)| *seq)).flatten();
    let entries = rows.into_iter().map(|(seq, entry)| JournalRow { seq, entry }).collect();
    Ok(Json(JournalPage { entries, next_after }))
}

async fn checkpoints(State(state): State<AppState>) -> Result<Json<Vec<CheckpointRow>>, Failure> {
    let rows = state.store.checkpoints().await?;
    Ok(Json(
        rows.into_iter()
            .map(|c| CheckpointRow {
                n_entries: c.n_entries,
                head_hash: hex::encode(&c.head_hash),
                signer: bs58::encode(&c.signer).into_string(),
                signature: hex::encode(&c.signature),
                signed_ms: c.signed_ms,
            })
            .collect(),
    ))
}

fn stake_answer(state: &AppState, worker_id: &str, view: iog_core::StakeView, due: Option<u64>) -> StakeStatus {
    StakeStatus {
        worker_id: worker_id.to_owned(),
        active: view.active.to_string(),
        unstaking: view.unstaking.to_string(),
        unstaked_at_ms: due,
        min_per_device: state.stake_min_per_device.to_string(),
    }
}

fn parse_worker(text: &str) -> Result<(iog_types::WorkerId, Address), Failure> {
    let address: Address = text.parse().map_err(|err: iog_ledger::AddressParseError| {
        Failure::new(StatusCode::BAD_REQUEST, "bad_worker_id", format!("worker id {text:?}: {err}"))
    })?;
    Ok((iog_types::WorkerId(text.to_owned()), address))
}

async fn stake_status(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
) -> Result<Json<StakeStatus>, Failure> {
    let (worker, _) = parse_worker(&worker_id)?;
    let (view, _) = state.engine.admission(worker, 0).await?;
    Ok(Json(stake_answer(&state, &worker_id, view, None)))
}

async fn stake(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    Json(body): Json<StakeRequest>,
) -> Result<Json<StakeStatus>, Failure> {
    change_stake(state, worker_id, body, false).await
}

async fn unstake(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    Json(body): Json<StakeRequest>,
) -> Result<Json<StakeStatus>, Failure> {
    change_stake(state, worker_id, body, true).await
}

/// Moves a worker's earnings to its own wallet, signed by its key.
async fn withdraw(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    Json(body): Json<StakeRequest>,
) -> Result<Json<WalletStatus>, Failure> {
    let (amount, address) = signed_worker_request(&worker_id, "withdraw", &body)?;
    let op = iog_ledger::stake::withdraw_op(&worker_id, address, amount, &body.request_id);
    match state.engine.ledger(op).await? {
        Ok(_) => Ok(Json(wallet_status(&state, address).await?)),
        Err(err) => Err(ledger_failure(&err)),
    }
}

/// Stakes or unstakes, once the worker's own key has signed the request.
async fn change_stake(
    state: AppState,
    worker_id: String,
    body: StakeRequest,
    unstake: bool,
) -> Result<Json<StakeStatus>, Failure> {
    let verb = if unstake { "unstake" } else { "stake" };
    let (amount, _) = signed_worker_request(&worker_id, verb, &body)?;
    let worker = iog_types::WorkerId(worker_id.clone());
    match state.engine.stake(worker, amount, body.request_id, unstake).await? {
        Ok((view, due)) => Ok(Json(stake_answer(&state, &worker_id, view, due))),
        Err(iog_core::StakeError::Ledger(err)) => Err(ledger_failure(&err)),
        Err(err) => Err(Failure::new(StatusCode::BAD_REQUEST, err.code(), err.to_string())),
    }
}

/// Checks that `signature_hex` is `address`'s ed25519 signature of `message`.
pub(crate) fn check_signature(address: &Address, message: &[u8], signature_hex: &str) -> Result<(), Failure> {
    let unauthorized = |why: &str| Failure::new(StatusCode::UNAUTHORIZED, "bad_signature", why.to_owned());
    let bytes = hex::decode(signature_hex).map_err(|_| unauthorized("the signature is not hex"))?;
    let bytes: [u8; 64] =
        bytes.as_slice().try_into().map_err(|_| unauthorized("an ed25519 signature is 64 bytes (128 hex digits)"))?;
    let key = VerifyingKey::from_bytes(address.public_key())
        .map_err(|_| unauthorized("the wallet address is not an ed25519 public key"))?;
    key.verify_strict(message, &Signature::from_bytes(&bytes))
        .map_err(|_| unauthorized(&format!("the signature is not wallet {address}'s over this request")))
}

/// A refusal of the ledger as an API error: short funds are 402, the rest
/// (a reused id, a resolved hold) 409.
pub(crate) fn ledger_failure(err: &iog_ledger::LedgerError) -> Failure {
    let status = match err {
        iog_ledger::LedgerError::InsufficientFunds { .. } => StatusCode::PAYMENT_REQUIRED,
        _ => StatusCode::CONFLICT,
    };
    Failure::new(status, err.code().as_str(), err.to_string())
}

/// Reads a worker's signed request for `verb`: its amount, request id and
/// the worker key's signature. Returns the amount and the worker's wallet.
fn signed_worker_request(worker_id: &str, verb: &str, body: &StakeRequest) -> Result<(Amount, Address), Failure> {
    let (_, address) = parse_worker(worker_id)?;
    let bad = |message: String| Failure::new(StatusCode::BAD_REQUEST, &format!("bad_{verb}_request"), message);
    let amount: Amount = body.amount.parse().map_err(|err| bad(format!("amount {:?}: {err}", body.amount)))?;
    parse_request_id(&body.request_id)?;
    let message = iog_proto::api::worker_signing_message(worker_id, verb, amount.base_units(), &body.request_id);
    check_signature(&address, &message, &body.signature)?;
    Ok((amount, address))
}

/// Reads a request id (`t-<32 hex>`), naming the field when it is not one.
pub(crate) fn parse_request_id(text: &str) -> Result<TransferId, Failure> {
    text.parse().map_err(|err: iog_ledger::TransferIdParseError| {
        Failure::new(StatusCode::BAD_REQUEST, "bad_request_id", format!("request_id: {err}"))
    })
}

fn parse_account(text: &str) -> Result<AccountId, Failure> {
    text.parse().map_err(|err: iog_ledger::AccountParseError| {
        Failure::new(StatusCode::BAD_REQUEST, "bad_account", err.to_string())
    })
}

async fn send(
    State(state): State<AppState>,
    Path(from): Path<String>,
    Json(body): Json<SendRequest>,
) -> Result<Json<WalletStatus>, Failure> {
    let from = parse_address(&from)?;
    let to = parse_address(&body.to)?;
    let bad = |message: String| Failure::new(StatusCode::BAD_REQUEST, "bad_send_request", message);
    let amount: Amount = body.amount.parse().map_err(|err| bad(format!("amount {:?}: {err}", body.amount)))?;
    let request_id = parse_request_id(&body.request_id)?;
    let message =
        iog_proto::api::send_signing_message(&from.to_string(), &to.to_string(), amount.base_units(), &body.request_id);
    check_signature(&from, &message, &body.signature)?;
    // The id is the sender's own: one wallet cannot use up another's ids.
    let id = TransferId::derive(&format!("send {from} {request_id}"));
    let op = Op::Transfer { id, debit: AccountId::Wallet(from), credit: AccountId::Wallet(to), amount };
    match state.engine.ledger(op).await? {
        Ok(_) => Ok(Json(wallet_status(&state, from).await?)),
        Err(err) => Err(ledger_failure(&err)),
    }
}

async fn account(State(state): State<AppState>, Path(account): Path<String>) -> Result<Json<AccountStatus>, Failure> {
    let account = parse_account(&account)?;
    let balance = state.engine.balance(account.clone()).await?;
    Ok(Json(AccountStatus {
        account: account.to_string(),
        available: balance.available.to_string(),
        posted: balance.posted.to_string(),
        held: balance.pending_debits.to_string(),
        incoming: balance.pending_credits.to_string(),
    }))
}

#[derive(Deserialize)]
struct HistoryQuery {
    limit: Option<usize>,
}

fn history_entry(entry: &Entry) -> HistoryEntry {
    let kind = match entry.op {
        Op::Transfer { .. } => "transfer",
        Op::Hold { .. } => "hold",
        Op::Post { .. } => "post",
        Op::Void { .. } => "void",
        Op::Mint { .. } => "mint",
    };
    HistoryEntry {
        seq: entry.seq,
        at_ms: entry.now_ms,
        transfer_id: entry.op.id().to_string(),
        kind: kind.to_owned(),
        description: entry.op.to_string(),
        refused: entry.rejected.map(|code| code.as_str().to_owned()),
    }
}

async fn history(
    State(state): State<AppState>,
    Path(account): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<HistoryEntry>>, Failure> {
    let account = parse_account(&account)?;
    let limit = query.limit.unwrap_or(50).min(HISTORY_MAX);
    let entries = state.engine.history(account, limit).await?;
    Ok(Json(entries.iter().map(history_entry).collect()))
}

async fn billing(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(job_id): Path<String>,
) -> Result<Json<JobBilling>, Failure> {
    let job_id = crate::api::owned_job(&state, caller, &job_id).await?;
    let job = state
        .store
        .job(job_id)
        .await?
        .ok_or_else(|| Failure::new(StatusCode::NOT_FOUND, "job_not_found", format!("no job {job_id}")))?;
    let not_paid =
        || Failure::new(StatusCode::NOT_FOUND, "job_not_paid", format!("job {job_id} has no [payment]; it is free"));
    let spec = iog_workloads::parse_job_json(&job.spec_json).map_err(Failure::internal)?;
    let terms = spec.payment.as_ref().ok_or_else(not_paid)?.terms().map_err(Failure::internal)?;
    let committed: Vec<_> = state
        .store
        .tasks(job_id)
        .await?
        .into_iter()
        .filter_map(|task| task.commit.map(|c| (task.task_id.task_idx, c)))
        .collect();
    let task_idxs = committed.iter().map(|(idx, _)| *idx).collect();
    let (escrow, paid) = state.engine.bill(job_id, task_idxs).await?.ok_or_else(not_paid)?;
    let mut workers: std::collections::BTreeMap<String, (u32, u64, Amount)> = Default::default();
    let mut fees = Amount::ZERO;
    for ((_, commit), paid) in committed.iter().zip(&paid) {
        fees = fees.checked_add(paid.fee).ok_or_else(|| Failure::internal("fees overflow"))?;
        let row = workers.entry(commit.worker_id.0.clone()).or_default();
        row.0 += u32::from(!paid.gross.is_zero());
        row.1 += commit.duration_ms;
        row.2 = row.2.checked_add(paid.worker).ok_or_else(|| Failure::internal("earnings overflow"))?;
    }
    Ok(Json(JobBilling {
        job_id,
        payer: match escrow.payer {
            AccountId::Wallet(address) => address.to_string(),
            other => other.to_string(),
        },
        budget: escrow.budget.to_string(),
        price_io_per_hour: terms.price_io_per_hour.to_string(),
        price_io_per_task_hour_max: spec.price_io_per_task_hour_max().map_err(Failure::internal)?.to_string(),
        spent: escrow.spent.to_string(),
        fees: fees.to_string(),
        held: escrow.held.to_string(),
        refunded: escrow.refunded.to_string(),
        workers: workers
            .into_iter()
            .map(|(worker_id, (n_paid, billed_ms, earned))| WorkerEarning {
                worker_id,
                n_paid,
                billed_ms,
                earned: earned.to_string(),
            })
            .collect(),
    }))
}
