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
    AccountStatus, ApiError, CheckpointRow, HistoryEntry, JobBilling, JournalPage, JournalRow, SendRequest,
    StakeRequest, StakeStatus, WalletStatus, WorkerEarning,
};
use serde::Deserialize;
use utoipa::IntoParams;

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

/// The query of a journal page.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct JournalQuery {
    /// Start after the entry with this sequence number: the previous page's `next_after`. From the first
    /// entry unless given.
    after: Option<u64>,
    /// Most entries on the page: 10000 unless given, at least 1 and at most 10000.
    limit: Option<u32>,
}

/// Reads the ledger's journal in order, one page at a time.
///
/// The journal as the store holds it: everything here is durable. Each entry is in the ledger's canonical
/// encoding, base64, so anyone can replay the ledger and check it against the signed checkpoints.
#[utoipa::path(
    get,
    path = "/v1/ledger/journal",
    tag = "ledger",
    params(JournalQuery),
    responses(
        (status = 200, description = "A page of the journal.", body = JournalPage),
        (status = 400, description = "The query string is not valid.", body = ApiError),
        (status = 500, description = "The store failed (`internal`).", body = ApiError),
    ),
)]
pub(crate) async fn journal(
    State(state): State<AppState>,
    Query(query): Query<JournalQuery>,
) -> Result<Json<JournalPage>, Failure> {
    let limit = query.limit.unwrap_or(JOURNAL_PAGE_MAX).clamp(1, JOURNAL_PAGE_MAX);
    let rows = state.store.journal_page(query.after, limit).await?;
    let next_after = (rows.len() == limit as usize).then(|| rows.last().map(|(seq, _)| *seq)).flatten();
    let entries = rows.into_iter().map(|(seq, entry)| JournalRow { seq, entry }).collect();
    Ok(Json(JournalPage { entries, next_after }))
}

/// Lists the journal's signed checkpoints, oldest first.
#[utoipa::path(
    get,
    path = "/v1/ledger/checkpoints",
    tag = "ledger",
    responses(
        (status = 200, description = "The signed checkpoints.", body = Vec<CheckpointRow>),
        (status = 500, description = "The store failed (`internal`).", body = ApiError),
    ),
)]
pub(crate) async fn checkpoints(State(state): State<AppState>) -> Result<Json<Vec<CheckpointRow>>, Failure> {
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

/// Reads a worker's stake.
#[utoipa::path(
    get,
    path = "/v1/workers/{worker_id}/stake",
    tag = "workers",
    params(
        crate::openapi::WorkerIdPath
    ),
    responses(
        (status = 200, description = "The worker's stake.", body = StakeStatus),
        (status = 400, description = "The worker id is not one (`bad_worker_id`).", body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn stake_status(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
) -> Result<Json<StakeStatus>, Failure> {
    let (worker, _) = parse_worker(&worker_id)?;
    let (view, _) = state.engine.admission(worker, 0).await?;
    Ok(Json(stake_answer(&state, &worker_id, view, None)))
}

/// Stakes $IO from a worker's wallet, signed by the worker's own key.
#[utoipa::path(
    post,
    path = "/v1/workers/{worker_id}/stake",
    tag = "workers",
    params(
        crate::openapi::WorkerIdPath
    ),
    responses(
        (status = 200, description = "The worker's stake after the request.", body = StakeStatus),
        (status = 400, description = "The worker id is not one (`bad_worker_id`), or the amount or request id \
            is not valid.", body = ApiError),
        (status = 401, description = "The signature is not the worker key's over this request (`bad_signature`).",
            body = ApiError),
        (status = 402, description = "The account cannot cover the amount (`insufficient_funds`).",
            body = ApiError),
        (status = 409, description = "The ledger refused the request, such as for a reused request id.",
            body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn stake(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    Json(body): Json<StakeRequest>,
) -> Result<Json<StakeStatus>, Failure> {
    change_stake(state, worker_id, body, false).await
}

/// Starts returning staked $IO to a worker's wallet, signed by the worker's own key.
///
/// The amount stays slashable until `unstaked_at_ms`.
#[utoipa::path(
    post,
    path = "/v1/workers/{worker_id}/unstake",
    tag = "workers",
    params(
        crate::openapi::WorkerIdPath
    ),
    responses(
        (status = 200, description = "The worker's stake after the request.", body = StakeStatus),
        (status = 400, description = "The worker id is not one (`bad_worker_id`), or the amount or request id \
            is not valid.", body = ApiError),
        (status = 401, description = "The signature is not the worker key's over this request (`bad_signature`).",
            body = ApiError),
        (status = 402, description = "The account cannot cover the amount (`insufficient_funds`).",
            body = ApiError),
        (status = 409, description = "The ledger refused the request, such as for a reused request id.",
            body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn unstake(
    State(state): State<AppState>,
    Path(worker_id): Path<String>,
    Json(body): Json<StakeRequest>,
) -> Result<Json<StakeStatus>, Failure> {
    change_stake(state, worker_id, body, true).await
}

/// Moves a worker's earnings to its own wallet, signed by its key.
#[utoipa::path(
    post,
    path = "/v1/workers/{worker_id}/withdraw",
    tag = "workers",
    params(
        crate::openapi::WorkerIdPath
    ),
    responses(
        (status = 200, description = "The worker's wallet after the withdrawal.", body = WalletStatus),
        (status = 400, description = "The worker id is not one (`bad_worker_id`), or the amount or request id \
            is not valid.", body = ApiError),
        (status = 401, description = "The signature is not the worker key's over this request (`bad_signature`).",
            body = ApiError),
        (status = 402, description = "The account cannot cover the amount (`insufficient_funds`).",
            body = ApiError),
        (status = 409, description = "The ledger refused the request, such as for a reused request id.",
            body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn withdraw(
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
    key.verify_strict(message, &Signature::from_bytes(&bytes)).map_err(|_| {
        unauthorized(&format!(
            "the signature is not wallet {address}'s over this request (or it was made for another TLS \
             connection: sign on the connection that sends it, with nothing in between that terminates TLS)"
        ))
    })
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

/// Sends $IO from one wallet to another, signed by the sending wallet's key.
#[utoipa::path(
    post,
    path = "/v1/wallets/{address}/send",
    tag = "wallets",
    params(
        crate::openapi::AddressPath
    ),
    responses(
        (status = 200, description = "The sending wallet's balance after the send.", body = WalletStatus),
        (status = 400, description = "An address is not one (`bad_address`), or the amount or request id is not \
            valid.", body = ApiError),
        (status = 401, description = "The signature is not the sending wallet's over this request \
            (`bad_signature`).", body = ApiError),
        (status = 402, description = "The wallet cannot cover the amount (`insufficient_funds`).", body = ApiError),
        (status = 409, description = "The ledger refused the send, such as for a reused request id.",
            body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn send(
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

/// Reads any ledger account's balances.
#[utoipa::path(
    get,
    path = "/v1/accounts/{account}",
    tag = "ledger",
    params(
        crate::openapi::AccountPath
    ),
    responses(
        (status = 200, description = "The account's balances.", body = AccountStatus),
        (status = 400, description = "The account is not one (`bad_account`).", body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn account(
    State(state): State<AppState>,
    Path(account): Path<String>,
) -> Result<Json<AccountStatus>, Failure> {
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

/// The query of an account's history.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryQuery {
    /// Most entries to list, newest first: 50 unless given, at most 1000.
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

/// Lists the operations that touched an account, newest first.
#[utoipa::path(
    get,
    path = "/v1/accounts/{account}/history",
    tag = "ledger",
    params(
        crate::openapi::AccountPath,
        HistoryQuery,
    ),
    responses(
        (status = 200, description = "The account's history.", body = Vec<HistoryEntry>),
        (status = 400, description = "The account is not one (`bad_account`), or the query string is not valid.",
            body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn history(
    State(state): State<AppState>,
    Path(account): Path<String>,
    Query(query): Query<HistoryQuery>,
) -> Result<Json<Vec<HistoryEntry>>, Failure> {
    let account = parse_account(&account)?;
    let limit = query.limit.unwrap_or(50).min(HISTORY_MAX);
    let entries = state.engine.history(account, limit).await?;
    Ok(Json(entries.iter().map(history_entry).collect()))
}

/// Reads what one of the caller's paid jobs has cost so far.
#[utoipa::path(
    get,
    path = "/v1/jobs/{job_id}/billing",
    tag = "jobs",
    params(
        crate::openapi::JobIdPath
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The job's bill.", body = JobBilling),
        (status = 400, description = "The job id is not one (`bad_job_id`).", body = ApiError),
        (status = 404, description = "The caller has no such job (`job_not_found`), or the job is free \
            (`job_not_paid`).", body = ApiError),
        (status = 500, description = "The store failed (`internal`).", body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn billing(
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
