//! The REST API, blob transfer and the worker stream endpoint.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State, WebSocketUpgrade};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use iog_core::NewJob;
use iog_ledger::Address;
use iog_proto::api::{
    ApiError, Artifact, FaucetRequest, Health, JobStatus, SubmitJob, SubmittedJob, TaskCounts, TaskStatus,
    WalletStatus, WorkerShare, WorkerStatus,
};
use iog_proto::{PROTOCOL_VERSION, STREAM_MESSAGE_BYTES_MAX, STREAM_PATH};
use iog_store::{INLINE_BLOB_BYTES_MAX, MAX_BLOB_BYTES};
use iog_types::{BlobId, Device, JobId, TaskState};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Caller;
use crate::engine::{SubmitPayment, now_ms};
use crate::server::AppState;
use crate::session;

/// Largest job spec accepted: 4 MiB of JSON (scenes are inlined).
const SPEC_BYTES_MAX: usize = 4 * 1024 * 1024;
/// Most jobs one listing returns.
const JOBS_LIST_MAX: u32 = 1_000;

pub(crate) fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/jobs", post(submit).layer(DefaultBodyLimit::max(SPEC_BYTES_MAX)).get(list_jobs))
        .route("/v1/jobs/{job_id}", get(job_status))
        .route("/v1/jobs/{job_id}/tasks", get(job_tasks))
        .route("/v1/jobs/{job_id}/cancel", post(cancel))
        .route("/v1/workers", get(workers))
        .route("/v1/wallets/{address}", get(wallet))
        .route("/v1/wallets/{address}/faucet", post(faucet))
        .route("/v1/blobs/{blob_id}", get(get_blob).put(put_blob).layer(DefaultBodyLimit::max(MAX_BLOB_BYTES as usize)))
        .route(STREAM_PATH, get(stream))
        .route(crate::openapi::OPENAPI_PATH, get(crate::openapi::document))
        .merge(crate::auth::routes())
        .merge(crate::keys::routes())
        .merge(crate::money::routes())
        .merge(crate::market::routes())
        .layer(axum::middleware::from_fn_with_state(state.clone(), crate::limits::by_address))
        .layer(axum::middleware::from_fn(json_errors))
        .with_state(state)
}

/// Most bytes of an error answer's text that [`json_errors`] keeps.
const ERROR_TEXT_BYTES_MAX: usize = 64 * 1024;

/// Middleware: every error answer is an [`ApiError`], also those that axum writes itself as plain text (a body
/// that is not the JSON asked for, a body over its limit, a query string that does not parse, a method the path
/// does not serve, a path nobody serves). Their code is the status's reason in snake case, such as
/// `unprocessable_entity`.
async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let reason = status.canonical_reason().unwrap_or("error");
    let text = match axum::body::to_bytes(body, ERROR_TEXT_BYTES_MAX).await {
        Ok(bytes) if !bytes.is_empty() => String::from_utf8_lossy(&bytes).trim().to_owned(),
        _ => reason.to_owned(),
    };
    let code = reason.to_ascii_lowercase().replace([' ', '-'], "_");
    let mut answer = (status, Json(ApiError { code, message: text })).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().append(name, value.clone());
        }
    }
    answer
}

/// An error answer with its HTTP status (and, for `rate_limited`, when to
/// come back).
#[derive(Debug)]
pub(crate) struct Failure(StatusCode, ApiError, pub(crate) Option<u64>);

impl Failure {
    pub(crate) fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Failure {
        Failure(status, ApiError { code: code.to_owned(), message: message.into() }, None)
    }

    /// 429 `rate_limited`, with a `Retry-After` of `retry_after_s` seconds.
    pub(crate) fn rate_limited(message: impl Into<String>, retry_after_s: u64) -> Failure {
        Failure(
            StatusCode::TOO_MANY_REQUESTS,
            ApiError { code: "rate_limited".into(), message: message.into() },
            Some(retry_after_s),
        )
    }

    pub(crate) fn internal(err: impl std::fmt::Display) -> Failure {
        tracing::error!(error = %err, "request failed");
        Failure::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", format!("internal error: {err}"))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self.2 {
            Some(retry_after_s) => {
                (self.0, [(header::RETRY_AFTER, retry_after_s.to_string())], Json(self.1)).into_response()
            }
            None => (self.0, Json(self.1)).into_response(),
        }
    }
}

impl From<iog_store::StoreError> for Failure {
    fn from(err: iog_store::StoreError) -> Failure {
        Failure::internal(err)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Failure {
        Failure::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", format!("{err:#}"))
    }
}

pub(crate) fn parse_job_id(text: &str) -> Result<JobId, Failure> {
    text.parse()
        .map_err(|err: iog_types::IdParseError| Failure::new(StatusCode::BAD_REQUEST, "bad_job_id", err.to_string()))
}

/// Says the coordinator is up.
///
/// Answers with the coordinator's version, the worker stream protocol it speaks and the key that signs the
/// ledger's checkpoints.
#[utoipa::path(
    get,
    path = "/v1/health",
    tag = "health",
    responses((status = 200, description = "The coordinator is up.", body = Health)),
)]
pub(crate) async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        protocol_version: PROTOCOL_VERSION,
        ledger_signer: state.ledger_signer.clone(),
    })
}

/// Submits a job.
///
/// The body holds the job spec as JSON (a job file with its scene files inlined, and the files a wasm, process,
/// blender, infer or train job names given by content address: upload each with `PUT /v1/blobs/{blob_id}`
/// first; an infer job also gives its model and `examples`, which `iog job submit` reads from the files). A spec with a `[payment]`
/// section must carry the paying wallet's signature in `authorization`, and the payer must be the caller: a job
/// belongs to the wallet that pays for it.
#[utoipa::path(
    post,
    path = "/v1/jobs",
    tag = "jobs",
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The job is accepted and durable.", body = SubmittedJob),
        (status = 400, description = "The spec is not valid (`invalid_spec`), a file it names was not uploaded \
            by the caller (`job_file_missing`, `sealed_input_missing`), the request id is not one \
            (`bad_request_id`), or the body is not the JSON asked for.", body = ApiError),
        (status = 401, description = "No valid bearer token, or a paid job without its payer's signature \
            (`unsigned_payment`) or with a wrong one (`bad_signature`).", body = ApiError),
        (status = 402, description = "The payer's wallet cannot cover the budget (`insufficient_funds`).",
            body = ApiError),
        (status = 403, description = "The job is paid by another wallet than the caller's (`payer_not_caller`).",
            body = ApiError),
        (status = 409, description = "The payer used this request id before (`request_reused`).",
            body = ApiError),
        (status = 413, description = "The spec is larger than 4 MiB.", body = ApiError),
        (status = 500, description = "The store failed (`internal`).", body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn submit(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Json(body): Json<SubmitJob>,
) -> Result<(StatusCode, Json<SubmittedJob>), Failure> {
    let spec_json = body.spec.get().as_bytes().to_vec();
    let invalid =
        |err: iog_workloads::SpecError| Failure::new(StatusCode::BAD_REQUEST, "invalid_spec", err.to_string());
    let spec = iog_workloads::parse_job_json(&spec_json).map_err(invalid)?;
    let payment = authorize_payment(&spec, body.authorization.as_ref(), &spec_json)?;
    if let Some(payment) = &payment
        && payment.terms.payer != caller
    {
        let message = format!(
            "the job is paid by wallet {} but submitted by {caller}; a job belongs to its payer, so submit it \
             with the paying wallet's key",
            payment.terms.payer
        );
        return Err(Failure::new(StatusCode::FORBIDDEN, "payer_not_caller", message));
    }
    if spec.job.sealed && !spec.is_sealed_wire() {
        let message = "job.sealed is true but the spec carries its workload section, which a sealed job never \
                       sends: submit it with `iog job submit`, which splits and encrypts it on your machine and \
                       sends a [sealed] section naming the encrypted inputs instead";
        return Err(Failure::new(StatusCode::BAD_REQUEST, "invalid_spec", message));
    }
    let assets = job_assets(&state, caller, &spec).await?;
    let (workload_kind, inputs, inline_inputs, chain) = match &spec.sealed {
        Some(sealed) => {
            let inputs = sealed_inputs(&state, caller, sealed).await?;
            let inline_inputs = vec![None; inputs.len()];
            (spec.job.workload.clone(), inputs, inline_inputs, None)
        }
        None => {
            let mut resolved = spec.clone();
            crate::assemble::resolve_files(&state.store, &mut resolved)
                .await
                .map_err(|err| Failure::new(StatusCode::BAD_REQUEST, "invalid_spec", format!("{err:#}")))?;
            let workload = resolved.workload().map_err(invalid)?;
            let workload_kind = workload.kind().to_owned();
            let device = spec.resources.as_ref().map(|resources| resources.device_choice()).unwrap_or_default();
            let chain = iog_workloads::chain_length(&workload);
            let (inputs, inline_inputs) = plan_inputs(&state, workload, device).await?;
            (workload_kind, inputs, inline_inputs, chain)
        }
    };
    let job_id = JobId(rand::random::<u64>().max(1));
    // A chained job plans its first task only; the rest are made as the
    // chain goes.
    let n_tasks = chain.map_or(inputs.len() as u32, |n| u32::try_from(n).unwrap_or(u32::MAX));
    let requirements = spec.requirements().map_err(invalid)?;
    // The job belongs to the wallet that proved its key.
    let submitter = caller.to_string();
    let job = NewJob {
        chain: chain.map(|n| u32::try_from(n).unwrap_or(u32::MAX)),
        job_id,
        name: spec.job.name.clone(),
        workload: workload_kind,
        spec_json,
        max_attempts: spec.job.max_attempts,
        task_timeout_ms: spec.job.task_timeout_ms,
        inputs,
        requirements,
        submitter,
        verify: spec.verify().map_err(invalid)?,
        sealed: spec.job.sealed,
        assets,
    };
    match state.engine.submit(job, inline_inputs, payment).await? {
        Ok(()) => {
            tracing::info!(job_id = %job_id, n_tasks, name = %spec.job.name, "job accepted");
            Ok((StatusCode::CREATED, Json(SubmittedJob { job_id, n_tasks })))
        }
        Err(rejection) => {
            let status = match rejection.code {
                "insufficient_funds" => StatusCode::PAYMENT_REQUIRED,
                "request_reused" => StatusCode::CONFLICT,
                _ => StatusCode::BAD_REQUEST,
            };
            Err(Failure::new(status, rejection.code, rejection.message))
        }
    }
}

/// Splits a plain job into its task inputs. Planning is CPU work; it stays
/// off the async threads. Small inputs go to the engine, which stores them
/// in the job's own transaction; large ones are written as files first.
async fn plan_inputs(
    state: &AppState,
    workload: iog_workloads::WorkloadSpec,
    device: iog_workloads::DeviceChoice,
) -> Result<(Vec<BlobId>, Vec<Option<Arc<[u8]>>>), Failure> {
    let planned = tokio::task::spawn_blocking(move || iog_workloads::plan_on(&workload, device))
        .await
        .map_err(Failure::internal)?
        .map_err(|err| Failure::new(StatusCode::BAD_REQUEST, "invalid_spec", err.to_string()))?;
    let mut inputs = Vec::with_capacity(planned.len());
    let mut inline_inputs = Vec::with_capacity(planned.len());
    for bytes in planned {
        if bytes.len() <= INLINE_BLOB_BYTES_MAX {
            inputs.push(BlobId::of(&bytes));
            inline_inputs.push(Some(Arc::from(bytes)));
        } else {
            inputs.push(state.store.put_blob(bytes).await?);
            inline_inputs.push(None);
        }
    }
    Ok((inputs, inline_inputs))
}

/// The blobs a job's tasks read besides their inputs (a wasm job's module
/// and files, an infer job's weights and data), every one uploaded by the
/// submitter, as must be the files the coordinator reads to plan the job (a
/// train job's data): naming a blob one did not upload would make it
/// readable to the job's workers.
async fn job_assets(state: &AppState, caller: Address, spec: &iog_workloads::JobSpec) -> Result<Vec<BlobId>, Failure> {
    let assets = spec.assets().map_err(|err| Failure::new(StatusCode::BAD_REQUEST, "invalid_spec", err.to_string()))?;
    let submitter = caller.to_string();
    // The files the coordinator reads to plan the job count too: it would
    // otherwise put another's file, cut in shards, in the tasks' inputs.
    for blob in assets.iter().chain(&spec.planning_files()) {
        if !state.store.uploaded_by(*blob, &submitter).await? {
            let message = format!(
                "the job names file {blob}, which wallet {submitter} has not uploaded; upload it with \
                 PUT /v1/blobs/{blob} before submitting (`iog job submit` does)"
            );
            return Err(Failure::new(StatusCode::BAD_REQUEST, "job_file_missing", message));
        }
    }
    Ok(assets)
}

/// The task inputs of a sealed job: the blobs its manifest lists, every one
/// of them (and the manifest) uploaded by the submitter itself. Naming a
/// blob one did not upload would make it readable through the job.
async fn sealed_inputs(
    state: &AppState,
    caller: Address,
    sealed: &iog_workloads::SealedSpec,
) -> Result<Vec<BlobId>, Failure> {
    let submitter = caller.to_string();
    let not_uploaded = |what: String, blob: BlobId| {
        let message = format!(
            "{what} {blob} was not uploaded by wallet {submitter}; upload it with PUT /v1/blobs/{blob} before \
             submitting (`iog job submit` does)"
        );
        Failure::new(StatusCode::BAD_REQUEST, "sealed_input_missing", message)
    };
    if !state.store.uploaded_by(sealed.manifest, &submitter).await? {
        return Err(not_uploaded("sealed.manifest".to_owned(), sealed.manifest));
    }
    let manifest = state.store.get_blob(sealed.manifest).await?.ok_or_else(|| {
        Failure::new(StatusCode::BAD_REQUEST, "sealed_input_missing", format!("manifest {} is gone", sealed.manifest))
    })?;
    let inputs = iog_proto::manifest::decode_manifest(&manifest, sealed.n_tasks)
        .map_err(|why| Failure::new(StatusCode::BAD_REQUEST, "invalid_spec", format!("sealed.manifest: {why}")))?;
    for (task_idx, input) in inputs.iter().enumerate() {
        if !state.store.uploaded_by(*input, &submitter).await? {
            return Err(not_uploaded(format!("the input of task {task_idx}"), *input));
        }
    }
    Ok(inputs)
}

/// The escrow a paid job's submission asks for, once its payer's signature
/// over the exact spec bytes is checked; `None` for a free job.
fn authorize_payment(
    spec: &iog_workloads::JobSpec,
    authorization: Option<&iog_proto::api::PaymentAuthorization>,
    spec_json: &[u8],
) -> Result<Option<SubmitPayment>, Failure> {
    let Some(payment) = &spec.payment else {
        return Ok(None);
    };
    let terms =
        payment.terms().map_err(|err| Failure::new(StatusCode::BAD_REQUEST, "invalid_spec", err.to_string()))?;
    let Some(payer) = terms.wallet else {
        let message = "payment.wallet is missing: name the paying wallet's address (`iog job submit` fills in its own)";
        return Err(Failure::new(StatusCode::BAD_REQUEST, "invalid_spec", message));
    };
    let Some(authorization) = authorization else {
        let message = format!(
            "a job with [payment] must be signed by wallet {payer}; `iog job submit` signs with the key in --wallet-dir"
        );
        return Err(Failure::new(StatusCode::UNAUTHORIZED, "unsigned_payment", message));
    };
    crate::money::parse_request_id(&authorization.request_id)?;
    let message = iog_proto::api::submit_signing_message(&authorization.request_id, spec_json);
    crate::money::check_signature(&payer, &message, &authorization.signature)?;
    let terms =
        iog_ledger::billing::JobTerms { payer, budget: terms.budget, price_io_per_hour: terms.price_io_per_hour };
    Ok(Some(SubmitPayment { request_id: authorization.request_id.clone(), terms }))
}

/// The query of a job listing.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListQuery {
    /// Most jobs to list, newest first: 50 unless given, at most 1000.
    limit: Option<u32>,
}

/// Lists the caller's jobs, newest first.
#[utoipa::path(
    get,
    path = "/v1/jobs",
    tag = "jobs",
    params(ListQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The caller's jobs.", body = Vec<JobStatus>),
        (status = 400, description = "The query string is not valid.", body = ApiError),
        (status = 500, description = "The store failed (`internal`).", body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn list_jobs(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Query(query): Query<ListQuery>,
) -> Result<Json<Vec<JobStatus>>, Failure> {
    let limit = query.limit.unwrap_or(50).min(JOBS_LIST_MAX);
    let mut out = Vec::new();
    for job in state.store.jobs_of(&caller.to_string(), limit).await? {
        out.push(status_of(&state, job.job_id).await?);
    }
    Ok(Json(out))
}

async fn status_of(state: &AppState, job_id: JobId) -> Result<JobStatus, Failure> {
    let job = state
        .store
        .job(job_id)
        .await?
        .ok_or_else(|| Failure::new(StatusCode::NOT_FOUND, "job_not_found", format!("no job {job_id}")))?;
    let progress = state.store.job_progress(job_id).await?;
    let mut counts = TaskCounts::default();
    for (task_state, n) in progress.by_state {
        let slot = match task_state {
            TaskState::Queued => &mut counts.queued,
            TaskState::Leased => &mut counts.leased,
            TaskState::Committed => &mut counts.committed,
            TaskState::Failed => &mut counts.failed,
            TaskState::Cancelled => &mut counts.cancelled,
        };
        *slot = n;
    }
    let mut shares: BTreeMap<iog_types::WorkerId, WorkerShare> = BTreeMap::new();
    let blank = |worker_id: &iog_types::WorkerId| WorkerShare {
        worker_id: worker_id.clone(),
        n_committed: 0,
        n_leased: 0,
        busy_ms: 0,
        n_wrong: 0,
    };
    for (worker_id, n, busy_ms) in progress.committed_by_worker {
        let share = shares.entry(worker_id.clone()).or_insert_with(|| blank(&worker_id));
        share.n_committed = n;
        share.busy_ms = busy_ms;
    }
    for (worker_id, n) in progress.leased_by_worker {
        shares.entry(worker_id.clone()).or_insert_with(|| blank(&worker_id)).n_leased = n;
    }
    for (worker_id, n) in progress.wrong_by_worker {
        shares.entry(worker_id.clone()).or_insert_with(|| blank(&worker_id)).n_wrong = n;
    }
    let artifacts = state
        .store
        .artifacts(job_id)
        .await?
        .into_iter()
        .map(|a| Artifact { name: a.name, media_type: a.media_type, blob: a.blob, size_bytes: a.size_bytes })
        .collect();
    // A job's tasks share their requirements, so only a job with none
    // running can be held back by them; asking the engine only then keeps
    // status polls of running jobs off its queue.
    let waiting_reason = if job.state == iog_types::JobState::Running && counts.queued > 0 && counts.leased == 0 {
        state.engine.waiting_reason(job_id).await?
    } else {
        None
    };
    Ok(JobStatus {
        waiting_reason,
        job_id,
        name: job.name,
        workload: job.workload,
        state: job.state,
        reason: job.reason,
        n_tasks: job.n_tasks,
        verify: job.verify.to_text(),
        n_settled: progress.n_settled,
        tasks: counts,
        workers: shares.into_values().collect(),
        created_ms: job.created_ms,
        ended_ms: job.ended_ms,
        artifacts,
        sealed: job.sealed,
    })
}

/// Reads one of the caller's jobs.
///
/// Another wallet's job is answered exactly like a job that does not exist.
#[utoipa::path(
    get,
    path = "/v1/jobs/{job_id}",
    tag = "jobs",
    params(
        crate::openapi::JobIdPath
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The job's status.", body = JobStatus),
        (status = 400, description = "The job id is not one (`bad_job_id`).", body = ApiError),
        (status = 404, description = "The caller has no such job (`job_not_found`).", body = ApiError),
        (status = 500, description = "The store failed (`internal`).", body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn job_status(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(job_id): Path<String>,
) -> Result<Json<JobStatus>, Failure> {
    let job_id = owned_job(&state, caller, &job_id).await?;
    Ok(Json(status_of(&state, job_id).await?))
}

/// The job `text` names, when `caller` owns it. Another's job is answered
/// exactly like a job that does not exist, so ids leak nothing.
pub(crate) async fn owned_job(state: &AppState, caller: Address, text: &str) -> Result<JobId, Failure> {
    let job_id = parse_job_id(text)?;
    match state.store.job(job_id).await? {
        Some(job) if job.submitter == caller.to_string() => Ok(job_id),
        _ => Err(Failure::new(StatusCode::NOT_FOUND, "job_not_found", format!("no job {job_id}"))),
    }
}

/// Lists the tasks of one of the caller's jobs, verification replicas included.
#[utoipa::path(
    get,
    path = "/v1/jobs/{job_id}/tasks",
    tag = "jobs",
    params(
        crate::openapi::JobIdPath
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "One entry per task.", body = Vec<TaskStatus>),
        (status = 400, description = "The job id is not one (`bad_job_id`).", body = ApiError),
        (status = 404, description = "The caller has no such job (`job_not_found`).", body = ApiError),
        (status = 500, description = "The store failed (`internal`).", body = ApiError),
    ),
)]
pub(crate) async fn job_tasks(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(job_id): Path<String>,
) -> Result<Json<Vec<TaskStatus>>, Failure> {
    let job_id = owned_job(&state, caller, &job_id).await?;
    let tasks = state.store.tasks(job_id).await?;
    Ok(Json(
        tasks
            .into_iter()
            .map(|task| TaskStatus {
                task_id: task.task_id,
                state: task.state,
                attempts: task.attempts,
                holder: task.holder,
                last_error: task.last_error,
                committed_by: task.commit.as_ref().map(|c| c.worker_id.clone()),
                output: task.commit.as_ref().map(|c| c.output),
                duration_ms: task.commit.as_ref().map(|c| c.duration_ms),
                device: task.commit.as_ref().and_then(|c| c.device.clone()),
                price_io_per_hour: task.commit.as_ref().map(|c| c.price_io_per_hour.to_string()),
                verdict: task
                    .commit
                    .as_ref()
                    .and_then(|c| c.verdict)
                    .map(|valid| if valid { "valid" } else { "wrong" }.to_owned()),
                accepted_output: task.verified_output,
            })
            .collect(),
    ))
}

/// Cancels one of the caller's running jobs.
///
/// Its queued and leased tasks are cancelled; a paid job's unspent escrow goes back to its payer.
#[utoipa::path(
    post,
    path = "/v1/jobs/{job_id}/cancel",
    tag = "jobs",
    params(
        crate::openapi::JobIdPath
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The job's status after the cancellation.", body = JobStatus),
        (status = 400, description = "The job id is not one (`bad_job_id`).", body = ApiError),
        (status = 404, description = "The caller has no such job (`job_not_found`).", body = ApiError),
        (status = 409, description = "The job has ended already (`job_final`).", body = ApiError),
        (status = 500, description = "The store failed (`internal`).", body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(job_id): Path<String>,
) -> Result<Json<JobStatus>, Failure> {
    let job_id = owned_job(&state, caller, &job_id).await?;
    let status = status_of(&state, job_id).await?;
    if status.state.is_final() {
        let message = format!("job {job_id} is already {}; only running jobs can be cancelled", status.state);
        return Err(Failure::new(StatusCode::CONFLICT, "job_final", message));
    }
    state.engine.event(iog_core::Event::CancelJob { job_id }).await?;
    state.engine.barrier().await?;
    Ok(Json(status_of(&state, job_id).await?))
}

/// Lists every worker that ever joined, online or not.
#[utoipa::path(
    get,
    path = "/v1/workers",
    tag = "workers",
    responses(
        (status = 200, description = "One entry per worker.", body = Vec<WorkerStatus>),
        (status = 500, description = "The store failed (`internal`).", body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn workers(State(state): State<AppState>) -> Result<Json<Vec<WorkerStatus>>, Failure> {
    let live: BTreeMap<_, _> = state.engine.workers().await?.into_iter().map(|w| (w.worker_id.clone(), w)).collect();
    let mut out = Vec::new();
    for record in state.store.workers().await? {
        let devices: Vec<Device> = serde_json::from_str(&record.devices_json).unwrap_or_default();
        let view = live.get(&record.worker_id);
        let stored_offer = serde_json::from_str(&record.offer_json).ok();
        out.push(WorkerStatus {
            online: view.is_some_and(|v| v.connected),
            offer: view.map(|v| v.offer.clone()).or(stored_offer),
            in_use: view.map(|v| v.in_use_by_group.clone()).unwrap_or_default(),
            trust: view.map_or(0, |v| v.trust),
            paused: view.is_some_and(|v| v.paused),
            rtt_ms: view.map_or(0, |v| v.rtt_ms),
            coord: view.and_then(|v| v.coord),
            challenges_passed: view.map_or(0, |v| v.challenges.passed),
            challenges_failed: view.map_or(0, |v| v.challenges.failed),
            challenges_failed_in_row: view.map_or(0, |v| v.challenges.failed_in_row),
            challenging: view.is_some_and(|v| v.challenging),
            reputation_milli: view.map_or(iog_sched::index::REPUTATION_NEUTRAL_MILLI, |v| v.reputation.score_milli()),
            tasks_committed: view.map_or(0, |v| v.reputation.tasks_committed),
            tasks_failed: view.map_or(0, |v| v.reputation.tasks_failed),
            leases_lapsed: view.map_or(0, |v| v.reputation.leases_lapsed),
            online_hours: view.map_or(0, |v| v.reputation.online_hours),
            results_valid: view.map_or(0, |v| v.reputation.results_valid),
            results_wrong: view.map_or(0, |v| v.reputation.results_wrong),
            valid_streak: view.map_or(0, |v| v.reputation.valid_streak),
            available: view.is_some_and(|v| v.available),
            n_leases: view.map_or(0, |v| v.n_leases),
            last_seen_ms: view.filter(|v| v.connected).map_or(record.last_seen_ms, |_| now_ms()),
            worker_id: record.worker_id,
            agent_version: record.version,
            devices,
            first_seen_ms: record.first_seen_ms,
        });
    }
    Ok(Json(out))
}

fn parse_blob_id(text: &str) -> Result<BlobId, Failure> {
    text.parse()
        .map_err(|err: iog_types::IdParseError| Failure::new(StatusCode::BAD_REQUEST, "bad_blob_id", err.to_string()))
}

/// Downloads a blob the caller may read: an input or output of its own jobs.
///
/// A blob the caller may not read is answered exactly like a missing one.
#[utoipa::path(
    get,
    path = "/v1/blobs/{blob_id}",
    tag = "blobs",
    params(
        crate::openapi::BlobIdPath
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The blob's bytes.", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 400, description = "The blob id is not one (`bad_blob_id`).", body = ApiError),
        (status = 404, description = "No such blob the caller may read (`blob_not_found`).", body = ApiError),
        (status = 500, description = "The store failed (`internal`).", body = ApiError),
    ),
)]
pub(crate) async fn get_blob(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(blob_id): Path<String>,
) -> Result<Response, Failure> {
    let blob_id = parse_blob_id(&blob_id)?;
    // A blob the caller may not read is answered like a missing one, so
    // nobody learns by probing which content the network holds.
    // Nor by timing: the bytes are read only for a caller who may have them.
    let missing = || Failure::new(StatusCode::NOT_FOUND, "blob_not_found", format!("no blob {blob_id}"));
    if !state.store.blob_readable_by(blob_id, &caller.to_string()).await? {
        return Err(missing());
    }
    match state.store.get_blob(blob_id).await? {
        Some(bytes) => Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()),
        None => Err(missing()),
    }
}

/// Uploads a blob under its content address.
#[utoipa::path(
    put,
    path = "/v1/blobs/{blob_id}",
    tag = "blobs",
    params(
        crate::openapi::BlobIdPath
    ),
    request_body(
        content = Vec<u8>,
        content_type = "application/octet-stream",
        description = "The blob's bytes, whose blake3 hash must be `blob_id`.",
    ),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "The blob is stored."),
        (status = 400, description = "The blob id is not one (`bad_blob_id`) or not the hash of the bytes \
            (`blob_mismatch`).", body = ApiError),
        (status = 413, description = "The blob is larger than the coordinator takes.", body = ApiError),
        (status = 500, description = "The store failed (`internal`).", body = ApiError),
    ),
)]
pub(crate) async fn put_blob(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(blob_id): Path<String>,
    body: Bytes,
) -> Result<StatusCode, Failure> {
    let blob_id = parse_blob_id(&blob_id)?;
    state.store.put_blob_verified(blob_id, body.to_vec()).await.map_err(|err| match err {
        iog_store::StoreError::BlobMismatch { .. } => {
            Failure::new(StatusCode::BAD_REQUEST, "blob_mismatch", err.to_string())
        }
        other => Failure::internal(other),
    })?;
    // Who sent these bytes: a worker may report as its output only a blob
    // it uploaded itself.
    state.store.record_upload(blob_id, &caller.to_string()).await?;
    Ok(StatusCode::CREATED)
}

pub(crate) fn parse_address(text: &str) -> Result<iog_ledger::Address, Failure> {
    text.parse().map_err(|err: iog_ledger::AddressParseError| {
        Failure::new(StatusCode::BAD_REQUEST, "bad_address", format!("wallet address {text:?}: {err}"))
    })
}

pub(crate) async fn wallet_status(state: &AppState, address: iog_ledger::Address) -> Result<WalletStatus, Failure> {
    let balance = state.engine.balance(iog_ledger::AccountId::Wallet(address)).await?;
    Ok(WalletStatus {
        address: address.to_string(),
        available: balance.available.to_string(),
        posted: balance.posted.to_string(),
        held: balance.pending_debits.to_string(),
    })
}

/// Reads a wallet's balance.
#[utoipa::path(
    get,
    path = "/v1/wallets/{address}",
    tag = "wallets",
    params(
        crate::openapi::AddressPath
    ),
    responses(
        (status = 200, description = "The wallet's balance.", body = WalletStatus),
        (status = 400, description = "The address is not one (`bad_address`).", body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn wallet(
    State(state): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<WalletStatus>, Failure> {
    Ok(Json(wallet_status(&state, parse_address(&address)?).await?))
}

/// Grants the caller's own wallet $IO on a development network.
#[utoipa::path(
    post,
    path = "/v1/wallets/{address}/faucet",
    tag = "wallets",
    params(
        crate::openapi::AddressPath
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The wallet's balance after the grant.", body = WalletStatus),
        (status = 400, description = "The address is not one (`bad_address`), or the amount or request id is \
            not valid or the amount above the faucet's limit (`bad_faucet_request`).", body = ApiError),
        (status = 403, description = "The wallet is not the caller's (`not_owner`), or this network has no \
            faucet (`faucet_disabled`).", body = ApiError),
        (status = 409, description = "The ledger refused the grant, such as for a reused request id.",
            body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn faucet(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(address): Path<String>,
    Json(body): Json<FaucetRequest>,
) -> Result<Json<WalletStatus>, Failure> {
    let address = parse_address(&address)?;
    if address != caller {
        let message = format!("the faucet pays only the caller's own wallet ({caller}), not {address}");
        return Err(Failure::new(StatusCode::FORBIDDEN, "not_owner", message));
    }
    let Some(max) = state.faucet_max else {
        let message = "this network has no faucet; $IO comes from other wallets here (a development network \
                       started with `iog up`, `iog demo` or `iog coordinator --faucet-max-io N` has one)";
        return Err(Failure::new(StatusCode::FORBIDDEN, "faucet_disabled", message));
    };
    let bad = |message: String| Failure::new(StatusCode::BAD_REQUEST, "bad_faucet_request", message);
    let amount: iog_ledger::Amount =
        body.amount.parse().map_err(|err| bad(format!("amount {:?}: {err}", body.amount)))?;
    if amount > max {
        return Err(bad(format!("the faucet grants at most {max} per request, asked for {amount}")));
    }
    let id: iog_ledger::TransferId =
        body.request_id.parse().map_err(|err| bad(format!("request_id {:?}: {err}", body.request_id)))?;
    let credit = iog_ledger::AccountId::Wallet(address);
    let op = iog_ledger::Op::Mint { id, credit, amount, reason: "dev faucet".to_owned() };
    match state.engine.ledger(op).await? {
        Ok(_) => Ok(Json(wallet_status(&state, address).await?)),
        Err(err) => Err(crate::money::ledger_failure(&err)),
    }
}

async fn stream(
    State(state): State<AppState>,
    ConnectInfo(crate::listener::PeerAddr(remote)): ConnectInfo<crate::listener::PeerAddr>,
    axum::Extension(channel): axum::Extension<crate::listener::Channel>,
    axum::Extension(idle): axum::Extension<crate::listener::IdleLimit>,
    upgrade: WebSocketUpgrade,
) -> Response {
    // A worker session is quiet at most as long as a worker may go without
    // a heartbeat before its session is closed; the connection leaves it
    // twice that.
    idle.raise_to(std::time::Duration::from_millis(state.core_config.worker_timeout_ms().saturating_mul(2)));
    upgrade
        .max_message_size(STREAM_MESSAGE_BYTES_MAX)
        .on_upgrade(move |socket| session::serve(socket, state, remote, channel))
}
