//! Sealed jobs: end-to-end encrypted inputs and results, from the
//! submitter's side.
//!
//! A sealed job is split, sealed and later assembled on the submitter's
//! machine; the coordinator stores and relays only ciphertext. The steps:
//!
//! 1. [`prepare`] plans the workload into task inputs, draws a fresh
//!    [`JobSecret`], seals input i with task key i, and builds the manifest
//!    (the inputs' blob ids) and the wire spec the coordinator receives: the
//!    job's `[job]`, `[payment]`, `[resources]` and `[verify]` sections and a
//!    `[sealed]` section, but no workload section.
//! 2. [`submit_prepared`] writes the job's [`SealedRecord`] (secret and full
//!    spec) to `<wallet dir>/sealed-jobs/` before anything is sent, uploads
//!    the sealed inputs and the manifest, submits the wire spec, and renames
//!    the record after the job id. Without the record the job's results can
//!    never be read, so it must survive a crash right after the submission.
//! 3. While the job runs, the workers that hold its tasks ask for their task
//!    keys. [`serve_keys`] (or a [`KeyServer`], which remembers what it
//!    refused) answers them: it checks each worker's signature over its seal
//!    key, then wraps the task key to that seal key for exactly that job,
//!    task and worker ([`grant_for`]). Only a client holding the record can
//!    do this, so a sealed job's tasks wait while none runs (`iog job watch`).
//! 4. Once the job is done, [`open_results`] downloads each task's accepted
//!    output, opens it with the task key and assembles the artifacts locally.
//!
//! Replicas of verification are tasks of their own at index `i + r·n`; they
//! share task i's input and key, and each gets the key wrapped under its own
//! index.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use iog_proto::api::{KeyRequest, PaymentAuthorization, SubmittedJob, TaskKeyGrant, TaskStatus};
use iog_seal::{JobSecret, Purpose, SealError, SealPublic, TaskKey};
use iog_types::{BlobId, JobId, TaskId, WorkerId};
use iog_workloads::{Artifact, AssembleError, JobSpec, SpecError};
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::{Client, ClientError};

/// The folder of the wallet dir that holds the records of sealed jobs.
pub const SEALED_JOBS_DIR: &str = "sealed-jobs";

/// What the `format` field of a record file says.
pub const RECORD_FORMAT: &str = "iog sealed job v1";

/// Most grants sent in one `POST /v1/jobs/{id}/task-keys` (the
/// coordinator's limit).
pub const GRANTS_PER_REQUEST_MAX: usize = 4_096;

/// Blobs uploaded or downloaded at once.
const TRANSFERS_IN_FLIGHT: usize = 16;

/// Largest record file read, in bytes; a render job's inlined scene is at
/// most 16 MiB and its JSON not much more.
const RECORD_FILE_BYTES_MAX: u64 = 64 << 20;

/// A sealed job could not be prepared, submitted, served or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealedError {
    /// The spec does not ask for sealing.
    #[error("the job is not sealed (job.sealed is false); submit it as a plain job, or set job.sealed = true")]
    NotSealed,
    /// The spec already is a wire spec, with a `[sealed]` section.
    #[error(
        "the job file has a [sealed] section, which `iog job submit` writes itself; remove it and keep the \
         workload section"
    )]
    AlreadyWire,
    /// The spec is invalid or cannot be planned.
    #[error("invalid job spec: {0}")]
    Spec(#[from] SpecError),
    /// The wire spec given to [`submit_prepared`] is not the prepared one.
    #[error(
        "the spec to submit names manifest {given:?} and {given_tasks:?} tasks, but the prepared job has manifest \
         {prepared} and {prepared_tasks} tasks; submit the prepared job's own wire spec"
    )]
    WireMismatch { prepared: BlobId, prepared_tasks: u32, given: Option<BlobId>, given_tasks: Option<u32> },
    /// A request to the coordinator failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The record of a sealed job could not be written.
    #[error(
        "write the key record of the sealed job to {path}: {source}; without it the job's results cannot be read, \
         so nothing was submitted; make {dir} writable (or pass another --wallet-dir)",
        dir = path.parent().map_or_else(String::new, |dir| dir.display().to_string())
    )]
    WriteRecord {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The job was accepted, but its record could not be saved under its id.
    #[error(
        "job {job_id} was submitted, but its key record could not be saved under the job's id: {source}; the key \
         is in {pending}: rename that file to {job_id}.json in the same folder to watch the job and open its results"
    )]
    RecordNotRenamed {
        job_id: JobId,
        pending: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The record of a submitted sealed job is not where it should be.
    #[error(
        "job {job_id} is sealed and its key is kept where it was submitted, in {path}, which does not exist; \
         run this on the machine and with the --wallet-dir the job was submitted from (a pending-*.json record \
         in that folder, left by an interrupted submission, may be this job's: rename it to {job_id}.json)"
    )]
    RecordMissing { job_id: JobId, path: PathBuf },
    /// A record file exists but cannot be read or does not hold a record.
    #[error("read the key record of a sealed job, {path}: {reason}; restore the file from a backup")]
    RecordUnreadable { path: PathBuf, reason: String },
    /// A record belongs to another job than the one asked for.
    #[error("the key record {path} is job {found}'s, not job {expected}'s; restore the right file")]
    RecordOfOtherJob { path: PathBuf, expected: JobId, found: JobId },
    /// The record has no job id yet: the job was never accepted.
    #[error("the sealed job's record has no job id: the job was not submitted, or its submission was interrupted")]
    NotSubmitted,
    /// A worker's request for a task key was refused.
    #[error("refused the key request of worker {worker_id} for task {task_id}: {reason}")]
    BadKeyRequest { task_id: TaskId, worker_id: WorkerId, reason: String },
    /// A job is not done, so it has no results to open.
    #[error("{0}")]
    NotDone(String),
    /// A task of a done job has no accepted result.
    #[error(
        "task {task_id} of the done sealed job has no accepted result; the coordinator's answer is incomplete \
         (try again, or upgrade the coordinator)"
    )]
    MissingOutput { task_id: TaskId },
    /// An output does not open under its task key.
    #[error("open the result of task {task_id} (blob {blob}): {source}")]
    OpenOutput {
        task_id: TaskId,
        blob: BlobId,
        #[source]
        source: SealError,
    },
    /// The opened outputs do not assemble.
    #[error("assemble the opened results: {0}")]
    Assemble(#[from] AssembleError),
}

/// What the submitter keeps of a sealed job: the secret every task key
/// derives from, the full spec (with its workload section, which the
/// coordinator never sees), and where the inputs are.
///
/// On disk it is JSON (see [`SealedRecord::save`]):
///
/// ```json
/// {
///   "format": "iog sealed job v1",
///   "job_id": "j-0123456789abcdef",
///   "secret": "<64 hex digits>",
///   "manifest": "<64 hex digits: blob id of the manifest>",
///   "n_tasks": 12,
///   "created_ms": 1700000000000,
///   "spec": { "job": { "name": "...", "workload": "render", "sealed": true }, "render": { ... } }
/// }
/// ```
///
/// `job_id` is null in a pending record, written before the submission.
/// `Debug` never shows the secret.
#[derive(Clone)]
pub struct SealedRecord {
    job_id: Option<JobId>,
    secret: JobSecret,
    manifest: BlobId,
    n_tasks: u32,
    created_ms: u64,
    spec: JobSpec,
}

impl std::fmt::Debug for SealedRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedRecord")
            .field("job_id", &self.job_id)
            .field("manifest", &self.manifest)
            .field("n_tasks", &self.n_tasks)
            .field("name", &self.spec.job.name)
            .finish_non_exhaustive()
    }
}

/// The record's file form.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordFile {
    format: String,
    job_id: Option<JobId>,
    secret: String,
    manifest: BlobId,
    n_tasks: u32,
    created_ms: u64,
    spec: JobSpec,
}

impl SealedRecord {
    /// A record of a job about to be submitted.
    pub fn new(secret: JobSecret, spec: JobSpec, manifest: BlobId, n_tasks: u32) -> SealedRecord {
        SealedRecord { job_id: None, secret, manifest, n_tasks, created_ms: now_ms(), spec }
    }

    /// The job's id, once the coordinator accepted it.
    pub fn job_id(&self) -> Option<JobId> {
        self.job_id
    }

    /// Records the id the coordinator gave the job.
    pub fn set_job_id(&mut self, job_id: JobId) {
        self.job_id = Some(job_id);
    }

    /// The full spec, workload section included.
    pub fn spec(&self) -> &JobSpec {
        &self.spec
    }

    /// The blob id of the manifest listing the sealed inputs.
    pub fn manifest(&self) -> BlobId {
        self.manifest
    }

    /// Tasks in the job's plan (replicas not counted).
    pub fn n_tasks(&self) -> u32 {
        self.n_tasks
    }

    /// When the record was made, Unix milliseconds.
    pub fn created_ms(&self) -> u64 {
        self.created_ms
    }

    /// The job's secret. It reads every input and result: do not log it.
    pub fn secret(&self) -> &JobSecret {
        &self.secret
    }

    /// The key of task `task_idx`, a replica's index included: replica
    /// `i + r·n` has task i's key.
    pub fn task_key(&self, task_idx: u32) -> TaskKey {
        self.secret.task_key(task_idx % self.n_tasks.max(1))
    }

    /// Where the records of sealed jobs live in `wallet_dir`.
    pub fn dir(wallet_dir: &Path) -> PathBuf {
        wallet_dir.join(SEALED_JOBS_DIR)
    }

    /// Where the record of submitted job `job_id` lives.
    pub fn path_for(wallet_dir: &Path, job_id: JobId) -> PathBuf {
        SealedRecord::dir(wallet_dir).join(format!("{job_id}.json"))
    }

    /// Where the record of a job not yet accepted lives, named by its
    /// manifest.
    pub fn pending_path(wallet_dir: &Path, manifest: BlobId) -> PathBuf {
        SealedRecord::dir(wallet_dir).join(format!("pending-{manifest}.json"))
    }

    /// Where this record is saved: by job id once it has one, else pending.
    pub fn path(&self, wallet_dir: &Path) -> PathBuf {
        match self.job_id {
            Some(job_id) => SealedRecord::path_for(wallet_dir, job_id),
            None => SealedRecord::pending_path(wallet_dir, self.manifest),
        }
    }

    /// Writes the record to [`SealedRecord::path`] atomically and durably:
    /// a temp file readable only by its owner (mode 0600), synced, renamed
    /// into place, and the folder synced, so that after this returns the
    /// record survives a crash. Creates `sealed-jobs/` (mode 0700) when
    /// needed. Returns the path written.
    pub fn save(&self, wallet_dir: &Path) -> Result<PathBuf, SealedError> {
        let path = self.path(wallet_dir);
        let file = RecordFile {
            format: RECORD_FORMAT.to_owned(),
            job_id: self.job_id,
            secret: self.secret.to_hex(),
            manifest: self.manifest,
            n_tasks: self.n_tasks,
            created_ms: self.created_ms,
            spec: self.spec.clone(),
        };
        let mut bytes = serde_json::to_vec_pretty(&file).expect("a record serializes");
        bytes.push(b'\n');
        write_private_atomically(&SealedRecord::dir(wallet_dir), &path, &bytes)
            .map_err(|source| SealedError::WriteRecord { path: path.clone(), source })?;
        Ok(path)
    }

    /// Removes the pending record of this job, if there is one (after the
    /// job was accepted and saved by id, or refused).
    pub fn remove_pending(&self, wallet_dir: &Path) -> std::io::Result<()> {
        let dir = SealedRecord::dir(wallet_dir);
        match fs::remove_file(SealedRecord::pending_path(wallet_dir, self.manifest)) {
            Ok(()) => sync_dir(&dir),
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(()),
            Err(err) => Err(err),
        }
    }

    /// Reads a record file.
    pub fn read(path: &Path) -> Result<SealedRecord, SealedError> {
        let unreadable = |reason: String| SealedError::RecordUnreadable { path: path.to_owned(), reason };
        let bytes = read_limited(path).map_err(|err| unreadable(err.to_string()))?;
        let file: RecordFile =
            serde_json::from_slice(&bytes).map_err(|err| unreadable(format!("not a sealed job's record: {err}")))?;
        if file.format != RECORD_FORMAT {
            return Err(unreadable(format!(
                "its format is {:?}, this build reads {RECORD_FORMAT:?}; upgrade iog",
                file.format
            )));
        }
        let secret = JobSecret::from_hex(&file.secret).map_err(|err| unreadable(err.to_string()))?;
        if file.n_tasks == 0 {
            return Err(unreadable("it names a job of 0 tasks".to_owned()));
        }
        Ok(SealedRecord {
            job_id: file.job_id,
            secret,
            manifest: file.manifest,
            n_tasks: file.n_tasks,
            created_ms: file.created_ms,
            spec: file.spec,
        })
    }

    /// Loads the record of submitted job `job_id` from `wallet_dir`. A
    /// record without a job id (a pending one renamed by hand) is taken as
    /// this job's.
    pub fn load(wallet_dir: &Path, job_id: JobId) -> Result<SealedRecord, SealedError> {
        let path = SealedRecord::path_for(wallet_dir, job_id);
        if !path.exists() {
            return Err(SealedError::RecordMissing { job_id, path });
        }
        let mut record = SealedRecord::read(&path)?;
        match record.job_id {
            Some(found) if found != job_id => {
                return Err(SealedError::RecordOfOtherJob { path, expected: job_id, found });
            }
            Some(_) => {}
            None => record.job_id = Some(job_id),
        }
        warn_if_readable_by_others(&path);
        Ok(record)
    }
}

/// A sealed job ready to upload and submit.
#[derive(Debug, Clone)]
pub struct PreparedJob {
    /// What the submitter keeps (not yet saved).
    pub record: SealedRecord,
    /// The sealed task inputs, task 0 first.
    pub inputs: Vec<Vec<u8>>,
    /// The manifest blob: the inputs' blob ids in order.
    pub manifest: Vec<u8>,
    /// The spec the coordinator receives: no workload section.
    pub wire: JobSpec,
}

/// Plans and seals a sealed job with a fresh secret (see [`prepare_with_secret`]).
pub fn prepare(spec: &JobSpec) -> Result<PreparedJob, SealedError> {
    prepare_with_secret(spec, JobSecret::generate())
}

/// Plans `spec`'s workload into task inputs and seals input i with task
/// key i of `secret`. Use a fresh secret for every job.
///
/// Fails when the spec is not a valid sealed job (`job.sealed = true`, a
/// workload section, no `[sealed]` section).
pub fn prepare_with_secret(spec: &JobSpec, secret: JobSecret) -> Result<PreparedJob, SealedError> {
    if !spec.job.sealed {
        return Err(SealedError::NotSealed);
    }
    if spec.is_sealed_wire() {
        return Err(SealedError::AlreadyWire);
    }
    spec.validate()?;
    let workload = spec.workload()?;
    let device = spec.resources.as_ref().map(|resources| resources.device_choice()).unwrap_or_default();
    let plain = iog_workloads::plan_on(&workload, device)?;
    let n_tasks = u32::try_from(plain.len()).expect("a plan has at most MAX_TASKS tasks");
    let inputs: Vec<Vec<u8>> = plain
        .iter()
        .enumerate()
        .map(|(task_idx, input)| secret.task_key(task_idx as u32).seal(Purpose::Input, input))
        .collect();
    let ids: Vec<BlobId> = inputs.iter().map(|input| BlobId::of(input)).collect();
    let manifest = iog_proto::manifest::encode_manifest(&ids);
    let manifest_id = BlobId::of(&manifest);
    let wire = spec.to_sealed_wire(manifest_id, n_tasks);
    wire.validate()?;
    let record = SealedRecord::new(secret, spec.clone(), manifest_id, n_tasks);
    Ok(PreparedJob { record, inputs, manifest, wire })
}

/// Uploads a prepared job's sealed inputs, then its manifest, a few at a
/// time.
pub async fn upload(client: &Client, prepared: &PreparedJob) -> Result<(), ClientError> {
    let mut in_flight = JoinSet::new();
    for input in &prepared.inputs {
        if in_flight.len() >= TRANSFERS_IN_FLIGHT
            && let Some(done) = in_flight.join_next().await
        {
            done.expect("a blob upload does not panic")?;
        }
        let client = client.clone();
        let input = input.clone();
        in_flight.spawn(async move { client.put_blob(input).await });
    }
    while let Some(done) = in_flight.join_next().await {
        done.expect("a blob upload does not panic")?;
    }
    client.put_blob(prepared.manifest.clone()).await?;
    Ok(())
}

/// Submits a prepared sealed job and returns what the coordinator answered
/// with the job's record, saved under the job's id in `wallet_dir`.
///
/// `wire` is `prepared.wire` as sent (a paid job's with its payer filled
/// in) and `authorization` the payer's signature over those bytes, as for
/// [`Client::submit_authorized`].
///
/// The record is saved as pending before anything is uploaded, so a crash
/// at any point leaves the secret on disk. A pending record is removed when
/// an upload fails or the coordinator refuses the job (a 4xx answer); after
/// a transport or server error it stays (the job may have been accepted).
pub async fn submit_prepared(
    client: &Client,
    prepared: PreparedJob,
    wallet_dir: &Path,
    wire: serde_json::Value,
    authorization: Option<PaymentAuthorization>,
) -> Result<(SubmittedJob, SealedRecord), SealedError> {
    let given = wire.get("sealed");
    let given_manifest = given.and_then(|sealed| sealed.get("manifest")).and_then(|m| m.as_str()?.parse().ok());
    let given_tasks = given.and_then(|sealed| sealed.get("n_tasks")).and_then(|n| u32::try_from(n.as_u64()?).ok());
    let mut record = prepared.record.clone();
    if given_manifest != Some(record.manifest) || given_tasks != Some(record.n_tasks) {
        return Err(SealedError::WireMismatch {
            prepared: record.manifest,
            prepared_tasks: record.n_tasks,
            given: given_manifest,
            given_tasks,
        });
    }
    record.job_id = None;
    let pending = record.save(wallet_dir)?;
    let remove_pending = |record: &SealedRecord| {
        if let Err(err) = record.remove_pending(wallet_dir) {
            tracing::warn!(path = %pending.display(), error = %err, "could not remove a pending record");
        }
    };
    if let Err(err) = upload(client, &prepared).await {
        // Nothing was submitted.
        remove_pending(&record);
        return Err(err.into());
    }
    let submitted = match client.submit_authorized(wire, authorization).await {
        Ok(submitted) => submitted,
        Err(err) => {
            // A refusal (4xx) means no job; after a transport or server
            // error the job may have been accepted, and only the pending
            // record can read it.
            if matches!(err, ClientError::Api { status: 400..=499, .. } | ClientError::NoIdentity) {
                remove_pending(&record);
            }
            return Err(err.into());
        }
    };
    record.set_job_id(submitted.job_id);
    if let Err(err) = record.save(wallet_dir) {
        let SealedError::WriteRecord { source, .. } = err else { return Err(err) };
        return Err(SealedError::RecordNotRenamed { job_id: submitted.job_id, pending, source });
    }
    remove_pending(&record);
    Ok((submitted, record))
}

/// Prepares and submits a free sealed job (one without `[payment]`; a paid
/// one needs its payer's authorization: see [`submit_prepared`]).
pub async fn submit(
    client: &Client,
    spec: &JobSpec,
    wallet_dir: &Path,
) -> Result<(SubmittedJob, SealedRecord), SealedError> {
    let prepared = prepare(spec)?;
    let wire = serde_json::to_value(&prepared.wire).expect("a spec serializes");
    submit_prepared(client, prepared, wallet_dir, wire, None).await
}

/// Checks a worker's request for a task key of job `job_id` and wraps the
/// key for it: the worker's signature over its seal key must verify by its
/// worker id, and the key of task `task_idx % n_tasks` is wrapped to that
/// seal key under `task_context(job_id, task_idx, worker_id)`.
pub fn grant_for(record: &SealedRecord, job_id: JobId, request: &KeyRequest) -> Result<TaskKeyGrant, SealedError> {
    let refuse = |reason: String| SealedError::BadKeyRequest {
        task_id: request.task_id,
        worker_id: request.worker_id.clone(),
        reason,
    };
    if let Some(own) = record.job_id
        && own != job_id
    {
        return Err(refuse(format!("this record is job {own}'s, not job {job_id}'s")));
    }
    if request.task_id.job_id != job_id {
        return Err(refuse(format!("the task is not one of job {job_id}")));
    }
    // Replicas of verification are tasks i + r·n with r below the most
    // runs a task may have; no other index is one of this job's.
    let index_max = u64::from(record.n_tasks) * u64::from(iog_types::REPLICAS_LIMIT);
    if u64::from(request.task_id.task_idx) >= index_max {
        return Err(refuse(format!("the job has no task {}", request.task_id.task_idx)));
    }
    let seal_key = SealPublic::from_hex(&request.seal_key).map_err(|err| refuse(err.to_string()))?;
    let mut signature = [0u8; 64];
    hex::decode_to_slice(request.seal_key_signature.trim(), &mut signature)
        .map_err(|_| refuse("its seal key signature is not 128 hex digits".to_owned()))?;
    let message = iog_seal::seal_key_signing_message(&request.worker_id.0, &seal_key);
    iog_host::verify(&request.worker_id, &message, &signature).map_err(|err| {
        refuse(format!("its seal key is not signed by the worker ({err}); the key may have been substituted"))
    })?;
    let context = iog_seal::task_context(job_id.0, request.task_id.task_idx, &request.worker_id.0);
    let wrapped = iog_seal::wrap(&seal_key, &context, &record.task_key(request.task_id.task_idx))
        .map_err(|err| refuse(err.to_string()))?;
    Ok(TaskKeyGrant {
        task_id: request.task_id,
        token: request.token,
        worker_id: request.worker_id.clone(),
        wrapped: wrapped.to_hex(),
    })
}

/// What one round of serving keys did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServedKeys {
    /// Keys the coordinator passed on to the workers.
    pub delivered: u32,
    /// Keys for leases that ended meanwhile (the coordinator dropped them).
    pub stale: u32,
    /// Requests refused (bad signature or seal key), each logged.
    pub refused: u32,
}

/// Answers the waiting key requests of the record's job once: lists them,
/// grants each that checks out ([`grant_for`]; the others are logged and
/// skipped), and sends the grants. Sends nothing when there are none.
pub async fn serve_keys(client: &Client, record: &SealedRecord) -> Result<ServedKeys, SealedError> {
    KeyServer::new(record.clone())?.serve(client).await
}

/// Serves the task keys of one sealed job, round after round; a request
/// that was refused once is not logged again.
#[derive(Debug)]
pub struct KeyServer {
    record: SealedRecord,
    job_id: JobId,
    refused: HashSet<(TaskId, u64, WorkerId)>,
    total: ServedKeys,
}

impl KeyServer {
    /// A server for a submitted job's record.
    pub fn new(record: SealedRecord) -> Result<KeyServer, SealedError> {
        let job_id = record.job_id.ok_or(SealedError::NotSubmitted)?;
        Ok(KeyServer { record, job_id, refused: HashSet::new(), total: ServedKeys::default() })
    }

    /// The job's record.
    pub fn record(&self) -> &SealedRecord {
        &self.record
    }

    /// The job it serves.
    pub fn job_id(&self) -> JobId {
        self.job_id
    }

    /// Everything served so far; `refused` counts distinct requests.
    pub fn total(&self) -> ServedKeys {
        self.total
    }

    /// One round: answers the requests waiting now.
    pub async fn serve(&mut self, client: &Client) -> Result<ServedKeys, SealedError> {
        let requests = client.key_requests(self.job_id).await?;
        let mut served = ServedKeys::default();
        let mut grants = Vec::with_capacity(requests.len());
        for request in &requests {
            let id = (request.task_id, request.token, request.worker_id.clone());
            if self.refused.contains(&id) {
                served.refused += 1;
                continue;
            }
            match grant_for(&self.record, self.job_id, request) {
                Ok(grant) => grants.push(grant),
                Err(err) => {
                    tracing::warn!(
                        task_id = %request.task_id,
                        worker_id = %request.worker_id,
                        "{err}; the task waits until its lease lapses and another worker takes it"
                    );
                    self.refused.insert(id);
                    served.refused += 1;
                }
            }
        }
        for chunk in grants.chunks(GRANTS_PER_REQUEST_MAX) {
            let outcome = client.grant_task_keys(self.job_id, chunk).await?;
            served.delivered += outcome.delivered;
            served.stale += outcome.stale;
        }
        self.total.delivered += served.delivered;
        self.total.stale += served.stale;
        self.total.refused = u32::try_from(self.refused.len()).unwrap_or(u32::MAX);
        Ok(served)
    }
}

/// For each task of the plan, the accepted output's blob and the run time
/// of a run that returned it: a run of the task or a replica (index
/// `i + r·n`) with a `valid` verdict and that output, else the task's own
/// run when it returned it, else 0.
pub fn accepted_outputs(n_tasks: u32, tasks: &[TaskStatus]) -> Result<Vec<(TaskId, BlobId, u64)>, SealedError> {
    let n = n_tasks.max(1);
    // Every run by the task it is a run of (replicas included), in one pass.
    let mut runs: Vec<Vec<&TaskStatus>> = vec![Vec::new(); n_tasks as usize];
    for run in tasks {
        if let Some(of_task) = runs.get_mut((run.task_id.task_idx % n) as usize) {
            of_task.push(run);
        }
    }
    let job_id = tasks.first().map_or(JobId(0), |task| task.task_id.job_id);
    let mut accepted = Vec::with_capacity(n_tasks as usize);
    for (task_idx, of_task) in (0..n_tasks).zip(&runs) {
        let Some(task) = of_task.iter().find(|run| run.task_id.task_idx == task_idx) else {
            return Err(SealedError::MissingOutput { task_id: TaskId::new(job_id, task_idx) });
        };
        let blob = task.accepted_output.ok_or(SealedError::MissingOutput { task_id: task.task_id })?;
        let returned = |run: &&&TaskStatus| run.output == Some(blob);
        let duration_ms = of_task
            .iter()
            .filter(returned)
            .find(|run| run.verdict.as_deref() == Some("valid"))
            .or_else(|| Some(task).filter(returned))
            .and_then(|run| run.duration_ms)
            .unwrap_or(0);
        accepted.push((task.task_id, blob, duration_ms));
    }
    Ok(accepted)
}

/// Opens the sealed outputs of the plan's tasks (task 0 first) and
/// assembles the job's artifacts, as the coordinator does for a plain job.
pub fn open_and_assemble(
    record: &SealedRecord,
    sealed_outputs: &[(TaskId, BlobId, Vec<u8>)],
    durations_ms: &[u64],
) -> Result<Vec<Artifact>, SealedError> {
    let mut outputs = Vec::with_capacity(sealed_outputs.len());
    for (task_id, blob, sealed) in sealed_outputs {
        let output = record
            .task_key(task_id.task_idx)
            .open(Purpose::Output, sealed)
            .map_err(|source| SealedError::OpenOutput { task_id: *task_id, blob: *blob, source })?;
        outputs.push(output);
    }
    let workload = record.spec.workload()?;
    Ok(iog_workloads::assemble(&workload, &outputs, durations_ms)?)
}

/// Downloads, opens and assembles the results of a done sealed job.
pub async fn open_results(client: &Client, record: &SealedRecord) -> Result<Vec<Artifact>, SealedError> {
    let job_id = record.job_id.ok_or(SealedError::NotSubmitted)?;
    let status = client.job(job_id).await?;
    if status.state != iog_types::JobState::Done {
        return Err(SealedError::NotDone(format!(
            "job {job_id} is {} ({}/{} tasks settled); its results can be opened once it is done",
            status.state, status.n_settled, status.n_tasks
        )));
    }
    let tasks = client.tasks(job_id).await?;
    let accepted = accepted_outputs(record.n_tasks, &tasks)?;
    let mut in_flight = JoinSet::new();
    let mut sealed: Vec<Option<(TaskId, BlobId, Vec<u8>)>> = vec![None; accepted.len()];
    for (slot, &(task_id, blob, _)) in accepted.iter().enumerate() {
        if in_flight.len() >= TRANSFERS_IN_FLIGHT
            && let Some(done) = in_flight.join_next().await
        {
            let (slot, task_id, blob, bytes) = done.expect("a blob download does not panic")?;
            sealed[slot] = Some((task_id, blob, bytes));
        }
        let client = client.clone();
        in_flight.spawn(async move {
            let bytes = client.get_blob(blob).await?;
            Ok::<_, ClientError>((slot, task_id, blob, bytes))
        });
    }
    while let Some(done) = in_flight.join_next().await {
        let (slot, task_id, blob, bytes) = done.expect("a blob download does not panic")?;
        sealed[slot] = Some((task_id, blob, bytes));
    }
    let sealed: Vec<_> = sealed.into_iter().map(|entry| entry.expect("every output was downloaded")).collect();
    let durations_ms: Vec<u64> = accepted.iter().map(|&(_, _, duration_ms)| duration_ms).collect();
    let record = record.clone();
    tokio::task::spawn_blocking(move || open_and_assemble(&record, &sealed, &durations_ms))
        .await
        .expect("assembling does not panic")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Reads at most [`RECORD_FILE_BYTES_MAX`] bytes of a file.
fn read_limited(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    File::open(path)?.take(RECORD_FILE_BYTES_MAX + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > RECORD_FILE_BYTES_MAX {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("it is larger than {RECORD_FILE_BYTES_MAX} bytes"),
        ));
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` (in `dir`, created readable only by its owner)
/// so that a reader never sees half a file and the file survives a crash
/// once this returns.
fn write_private_atomically(dir: &Path, path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    iog_host::private_file::create_private_dir(dir)?;
    iog_host::private_file::write_private_atomically(dir, path, bytes)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    iog_host::private_file::sync_dir(dir)
}

fn warn_if_readable_by_others(path: &Path) {
    let open = File::open(path).ok().and_then(|file| iog_host::private_file::open_to_others(&file));
    if let Some(mode) = open {
        tracing::warn!(
            path = %path.display(),
            mode = format!("{mode:o}"),
            "the key record of a sealed job is readable by other users; run `chmod 600` on it"
        );
    }
}
