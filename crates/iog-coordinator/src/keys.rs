//! The key desk of sealed jobs: where a worker's request for a task key
//! waits until the job's submitter answers it, and the API through which
//! the submitter does.
//!
//! The coordinator never holds a task key. It keeps each worker's seal key
//! (with the worker's own signature over it, so the submitter need not
//! trust the coordinator about whose key it is), lists the requests of a
//! job to its owner, and relays the wrapped keys the owner sends back to
//! the workers' sessions. A request is only taken from the worker that
//! holds the task's current lease, and a wrapped key only passed on for it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use iog_proto::api::{ApiError, GrantOutcome, KeyRequest, TaskKeyGrant};
use iog_types::{JobId, LeaseToken, TaskId, WorkerId};

use crate::api::{Failure, owned_job};
use crate::auth::Caller;
use crate::server::AppState;

/// Most key requests waiting at once over all jobs; more are dropped (the
/// worker asks again in its next session, and its lease lapses if nobody
/// answers).
pub const KEY_REQUESTS_MAX: usize = 100_000;
/// Most grants one `POST /v1/jobs/{id}/task-keys` may carry.
pub const GRANTS_PER_REQUEST_MAX: usize = 4_096;
/// How long a worker holding a sealed task waits for a key that opens it
/// before the coordinator takes the task back, unless configured
/// otherwise: 5 minutes.
pub const KEY_WAIT_MS_DEFAULT: u64 = 5 * 60_000;
/// The longest wait a coordinator may be configured with. A worker gives
/// up on a key by itself after 10 minutes and reports the task failed,
/// which counts against it; the coordinator must act first.
pub const KEY_WAIT_MS_MAX: u64 = 9 * 60_000;

/// A worker's seal key as its hello gave it.
#[derive(Debug, Clone)]
struct SealKey {
    public_hex: String,
    signature_hex: String,
}

#[derive(Debug, Clone)]
struct Wanted {
    token: LeaseToken,
    worker_id: WorkerId,
    /// When the worker first asked under this lease.
    since: Instant,
    /// A key was passed on and the worker has not asked again since.
    given: bool,
    /// A key was passed on under this lease at some time.
    answered: bool,
}

/// A request that waited too long for a key, for the engine to act on.
#[derive(Debug, Clone)]
pub(crate) struct Overdue {
    pub(crate) worker_id: WorkerId,
    pub(crate) task_id: TaskId,
    pub(crate) token: LeaseToken,
    pub(crate) waited: Duration,
}

#[derive(Default)]
struct Inner {
    seal_keys: HashMap<WorkerId, SealKey>,
    /// Requests by job, then by task index.
    wanted: HashMap<JobId, BTreeMap<u32, Wanted>>,
    n_wanted: usize,
}

/// Seal keys of workers and the key requests of sealed jobs, in memory: a
/// coordinator restart loses the requests, and workers ask again in their
/// new sessions.
#[derive(Default)]
pub(crate) struct KeyDesk {
    inner: Mutex<Inner>,
}

impl KeyDesk {
    /// Records a worker's seal key, its signature checked by the caller.
    pub(crate) fn register(&self, worker_id: &WorkerId, public_hex: String, signature_hex: String) {
        let mut inner = self.inner.lock().expect("key desk lock");
        inner.seal_keys.insert(worker_id.clone(), SealKey { public_hex, signature_hex });
    }

    /// Files the request of `worker_id`, which holds `task_id` under
    /// `token`; false when the desk is full. A later request for the same
    /// task replaces the earlier one; under the same lease it keeps the
    /// time of the first.
    pub(crate) fn want(&self, task_id: TaskId, token: LeaseToken, worker_id: WorkerId) -> bool {
        let mut inner = self.inner.lock().expect("key desk lock");
        let known = inner.wanted.get(&task_id.job_id).and_then(|job| job.get(&task_id.task_idx));
        let since = match known {
            Some(wanted) if wanted.token == token && wanted.worker_id == worker_id => wanted.since,
            Some(_) => Instant::now(),
            None if inner.n_wanted >= KEY_REQUESTS_MAX => return false,
            None => Instant::now(),
        };
        // A request under the same lease after a key went out (it did not
        // open, or the request crossed the key) is listed again, but no
        // longer timed: the submitter did answer.
        let answered = known.is_some_and(|wanted| wanted.token == token && wanted.answered);
        let job = inner.wanted.entry(task_id.job_id).or_default();
        if job.insert(task_id.task_idx, Wanted { token, worker_id, since, given: false, answered }).is_none() {
            inner.n_wanted += 1;
        }
        true
    }

    /// Notes that a key was passed on for `task_id` under `token`: the
    /// request is no longer listed, but its time is kept in case the key
    /// does not open the task and the worker asks again.
    pub(crate) fn given(&self, task_id: TaskId, token: LeaseToken) {
        let mut inner = self.inner.lock().expect("key desk lock");
        if let Some(wanted) = inner.wanted.get_mut(&task_id.job_id).and_then(|job| job.get_mut(&task_id.task_idx))
            && wanted.token == token
        {
            wanted.given = true;
            wanted.answered = true;
        }
    }

    /// Takes out every request whose lease `is_current` no longer holds,
    /// and returns (and takes out) those that waited `wait` or longer with
    /// no key ever given under their lease.
    pub(crate) fn sweep(
        &self,
        wait: Duration,
        is_current: impl Fn(&WorkerId, TaskId, LeaseToken) -> bool,
    ) -> Vec<Overdue> {
        let mut inner = self.inner.lock().expect("key desk lock");
        let now = Instant::now();
        let mut overdue = Vec::new();
        let mut removed = 0;
        inner.wanted.retain(|&job_id, job| {
            job.retain(|&task_idx, wanted| {
                let task_id = TaskId::new(job_id, task_idx);
                let waited = now.saturating_duration_since(wanted.since);
                let keep = if !is_current(&wanted.worker_id, task_id, wanted.token) {
                    false
                } else if !wanted.answered && waited >= wait {
                    let (worker_id, token) = (wanted.worker_id.clone(), wanted.token);
                    overdue.push(Overdue { worker_id, task_id, token, waited });
                    false
                } else {
                    true
                };
                removed += usize::from(!keep);
                keep
            });
            !job.is_empty()
        });
        inner.n_wanted -= removed;
        overdue
    }

    /// The waiting requests of one job, with each worker's seal key.
    fn requests(&self, job_id: JobId) -> Vec<KeyRequest> {
        let inner = self.inner.lock().expect("key desk lock");
        let Some(job) = inner.wanted.get(&job_id) else { return Vec::new() };
        job.iter()
            .filter(|(_, wanted)| !wanted.given)
            .filter_map(|(&task_idx, wanted)| {
                let key = inner.seal_keys.get(&wanted.worker_id)?;
                Some(KeyRequest {
                    task_id: TaskId::new(job_id, task_idx),
                    token: wanted.token.0,
                    worker_id: wanted.worker_id.clone(),
                    seal_key: key.public_hex.clone(),
                    seal_key_signature: key.signature_hex.clone(),
                })
            })
            .collect()
    }

    /// Removes the request for `task_id` if it is the one made under `token`.
    fn remove(&self, task_id: TaskId, token: LeaseToken) {
        let mut inner = self.inner.lock().expect("key desk lock");
        let Some(job) = inner.wanted.get_mut(&task_id.job_id) else { return };
        if job.get(&task_id.task_idx).is_some_and(|wanted| wanted.token == token) {
            job.remove(&task_id.task_idx);
            if job.is_empty() {
                inner.wanted.remove(&task_id.job_id);
            }
            inner.n_wanted -= 1;
        }
    }

    /// Drops every request of a job that has ended.
    pub(crate) fn forget_job(&self, job_id: JobId) {
        let mut inner = self.inner.lock().expect("key desk lock");
        if let Some(job) = inner.wanted.remove(&job_id) {
            inner.n_wanted -= job.len();
        }
    }
}

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/jobs/{job_id}/key-requests", get(key_requests))
        .route("/v1/jobs/{job_id}/task-keys", post(task_keys))
}

/// Whether `worker_id` holds `task_id` under `token` now.
async fn lease_is_current(
    state: &AppState,
    task_id: TaskId,
    token: LeaseToken,
    worker_id: &WorkerId,
) -> Result<bool, Failure> {
    Ok(state.store.current_lease(task_id).await?.is_some_and(|(holder, held)| holder == *worker_id && held == token))
}

/// Files a worker's request for a task key, if it holds the task's current
/// lease and the task belongs to a sealed job; anything else is ignored
/// (a worker with a stale lease is told to drop the task by reconciliation).
pub(crate) async fn worker_wants(state: &AppState, worker_id: &WorkerId, task_id: TaskId, token: LeaseToken) {
    let sealed = match state.store.job(task_id.job_id).await {
        Ok(job) => job.is_some_and(|job| job.sealed && job.state == iog_types::JobState::Running),
        Err(err) => {
            tracing::warn!(task_id = %task_id, error = %err, "reading a job for a key request failed");
            return;
        }
    };
    if !sealed {
        tracing::debug!(worker_id = %worker_id, task_id = %task_id, "key asked for a task of no running sealed job");
        return;
    }
    match lease_is_current(state, task_id, token, worker_id).await {
        Ok(true) => {
            if !state.keys.want(task_id, token, worker_id.clone()) {
                tracing::warn!(task_id = %task_id, "the key desk is full; the worker asks again later");
            }
        }
        Ok(false) => tracing::debug!(worker_id = %worker_id, task_id = %task_id, "key asked under a stale lease"),
        Err(_) => tracing::warn!(task_id = %task_id, "checking the lease of a key request failed"),
    }
}

/// Lists the task keys workers wait for, for one of the caller's sealed jobs.
///
/// Each entry names the worker, the lease, and the worker's seal key with
/// the worker's own signature over it. Requests under leases that are no
/// longer current are dropped, not listed.
#[utoipa::path(
    get,
    path = "/v1/jobs/{job_id}/key-requests",
    tag = "jobs",
    params(crate::openapi::JobIdPath),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The waiting requests (empty for a job that is not sealed or has ended).",
            body = Vec<KeyRequest>),
        (status = 400, description = "The job id is not one (`bad_job_id`).", body = ApiError),
        (status = 404, description = "The caller has no such job (`job_not_found`).", body = ApiError),
        (status = 500, description = "The store failed (`internal`).", body = ApiError),
    ),
)]
pub(crate) async fn key_requests(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(job_id): Path<String>,
) -> Result<Json<Vec<KeyRequest>>, Failure> {
    let job_id = owned_job(&state, caller, &job_id).await?;
    let running = state.store.job(job_id).await?.is_some_and(|job| job.state == iog_types::JobState::Running);
    if !running {
        state.keys.forget_job(job_id);
        return Ok(Json(Vec::new()));
    }
    let mut out = Vec::new();
    for request in state.keys.requests(job_id) {
        let token = LeaseToken(request.token);
        if lease_is_current(&state, request.task_id, token, &request.worker_id).await? {
            out.push(request);
        } else {
            state.keys.remove(request.task_id, token);
        }
    }
    Ok(Json(out))
}

/// Hands task keys, wrapped by the caller to the workers that asked, to
/// those workers' sessions.
///
/// A grant is passed on only to the worker that holds the task's current
/// lease under the grant's token; the coordinator cannot read the key.
#[utoipa::path(
    post,
    path = "/v1/jobs/{job_id}/task-keys",
    tag = "jobs",
    params(crate::openapi::JobIdPath),
    request_body = Vec<TaskKeyGrant>,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "How many keys were passed on and how many were stale.", body = GrantOutcome),
        (status = 400, description = "The job id is not one (`bad_job_id`), a grant names a task of another \
            job or is not a wrapped key (`bad_grant`), or there are too many grants (`too_many_grants`).",
            body = ApiError),
        (status = 404, description = "The caller has no such job (`job_not_found`).", body = ApiError),
        (status = 500, description = "The store failed (`internal`).", body = ApiError),
        (status = 503, description = "The coordinator's engine is stopping (`unavailable`).", body = ApiError),
    ),
)]
pub(crate) async fn task_keys(
    State(state): State<AppState>,
    Caller(caller): Caller,
    Path(job_id): Path<String>,
    Json(grants): Json<Vec<TaskKeyGrant>>,
) -> Result<Json<GrantOutcome>, Failure> {
    let job_id = owned_job(&state, caller, &job_id).await?;
    if grants.len() > GRANTS_PER_REQUEST_MAX {
        let message = format!("{} grants in one request; send at most {GRANTS_PER_REQUEST_MAX}", grants.len());
        return Err(Failure::new(StatusCode::BAD_REQUEST, "too_many_grants", message));
    }
    let bad = |message: String| Failure::new(StatusCode::BAD_REQUEST, "bad_grant", message);
    for grant in &grants {
        if grant.task_id.job_id != job_id {
            return Err(bad(format!("task {} is not a task of job {job_id}", grant.task_id)));
        }
        iog_seal::WrappedKey::from_hex(&grant.wrapped)
            .map_err(|err| bad(format!("the key for task {}: {err}", grant.task_id)))?;
    }
    let mut outcome = GrantOutcome::default();
    for grant in grants {
        let token = LeaseToken(grant.token);
        // The engine checks the lease against the core itself, so a lease
        // that ended after the owner wrapped the key gets nothing.
        if state.engine.deliver_key(grant.worker_id, grant.task_id, token, grant.wrapped).await? {
            outcome.delivered += 1;
        } else {
            outcome.stale += 1;
            state.keys.remove(grant.task_id, token);
        }
    }
    Ok(Json(outcome))
}
