//! Runs one task: fetch input, compute, upload output.

use std::time::Instant;

use iog_client::Client;
use iog_proto::STREAM_INLINE_BYTES_MAX;
use iog_types::{BlobId, LeaseToken, TaskId};

use crate::exec::Executors;
use crate::keys::TaskKeys;

/// Attempts at fetching an input or uploading an output before the task is
/// reported failed.
const TRANSFER_ATTEMPTS_MAX: u32 = 5;

/// What a finished task produced.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub(crate) output: BlobId,
    /// The output itself when small enough to travel in the result message;
    /// otherwise it has been uploaded as a blob.
    pub(crate) output_bytes: Option<Vec<u8>>,
    pub(crate) duration_ms: u64,
    pub(crate) work_units: u64,
    /// The GPU whose kernel ran it; `None` for the CPU.
    pub(crate) device: Option<String>,
}

pub(crate) async fn with_retries<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, iog_client::ClientError>>,
{
    let mut delay_ms = 100;
    for n in 1..=TRANSFER_ATTEMPTS_MAX {
        match attempt().await {
            Ok(value) => return Ok(value),
            Err(err) if n == TRANSFER_ATTEMPTS_MAX => return Err(format!("{what}: {err}")),
            Err(err) => {
                tracing::debug!(error = %err, attempt = n, "{what} failed; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                delay_ms *= 2;
            }
        }
    }
    unreachable!("the loop returns on its last attempt")
}

/// What running a task needs of its worker.
#[derive(Clone)]
pub(crate) struct TaskEnv {
    pub(crate) client: Client,
    /// Sealed tasks' keys.
    pub(crate) keys: std::sync::Arc<TaskKeys>,
    /// Where users' own code runs.
    pub(crate) executors: std::sync::Arc<Executors>,
}

/// Runs a task to completion. The error is a message for the coordinator.
/// `input_bytes` is the input when the coordinator sent it inline.
///
/// A sealed input waits for its task key (see [`TaskKeys`]), is opened, and
/// the output is sealed with the same key before it leaves the worker.
pub(crate) async fn run(
    env: &TaskEnv,
    task_id: TaskId,
    token: LeaseToken,
    input: BlobId,
    input_bytes: Option<Vec<u8>>,
    #[cfg(feature = "cheats")] tamper: Option<crate::cheat::Tamper>,
) -> Result<Finished, String> {
    let TaskEnv { client, keys, executors } = env;
    let bytes = match input_bytes {
        Some(bytes) if BlobId::of(&bytes) == input => bytes,
        Some(_) => return Err(format!("the inline input of task {task_id} does not hash to its id {input}")),
        None => with_retries("fetch input", || client.get_blob(input)).await?,
    };
    let (bytes, key) = if iog_seal::is_sealed(&bytes) {
        let key = keys.wait(task_id, token).await?;
        let opened = key
            .open(iog_seal::Purpose::Input, &bytes)
            .map_err(|err| format!("open the sealed input of task {task_id}: {err}"))?;
        (opened, Some(key))
    } else {
        (bytes, None)
    };
    #[cfg(feature = "cheats")]
    let bytes = match &tamper {
        Some(tamper) => tamper.input(bytes),
        None => bytes,
    };
    let started = Instant::now();
    let mut device = None;
    let run = match iog_workloads::decode_task(&bytes).map_err(|err| err.to_string())? {
        iog_workloads::Decoded::Wasm(task) => executors.run_wasm(client, task).await?,
        iog_workloads::Decoded::Infer(task) => executors.run_infer(client, task).await?,
        iog_workloads::Decoded::Process(task) => {
            let (run, gpu) = executors.run_process(client, task).await?;
            device = gpu;
            run
        }
        iog_workloads::Decoded::BuiltIn { gpu } => {
            let kernel = if gpu { executors.kernel() } else { None };
            if gpu && kernel.is_none() {
                tracing::debug!(task_id = %task_id, "the job asks for a GPU; no GPU kernel is free here, so the CPU runs it");
            }
            let (ran, kernel) = tokio::task::spawn_blocking(move || {
                let ran = iog_workloads::run_task_on(&bytes, kernel.as_ref().map(|lease| lease.accelerator()));
                (ran, kernel)
            })
            .await
            .map_err(|err| format!("task {task_id} panicked: {err}"))?;
            let ran = ran.map_err(|err| err.to_string())?;
            if let (Some(err), Some(kernel)) = (&ran.accel_error, kernel) {
                // The CPU ran the task; the GPU takes no more.
                tracing::warn!(task_id = %task_id, error = %err, "a GPU kernel failed; the CPU ran the task and this GPU is retired");
                kernel.retire();
            }
            device = ran.device;
            ran.run
        }
    };
    #[cfg(feature = "cheats")]
    let run = match &tamper {
        Some(tamper) => tamper.output(run),
        None => run,
    };
    let duration_ms = started.elapsed().as_millis() as u64;
    let mut run = run;
    if let Some(key) = &key {
        run.output = key.seal(iog_seal::Purpose::Output, &run.output);
    }
    let output = BlobId::of(&run.output);
    let output_bytes = if run.output.len() <= STREAM_INLINE_BYTES_MAX {
        Some(run.output)
    } else {
        let bytes = run.output;
        with_retries("upload output", || client.put_blob(bytes.clone())).await?;
        None
    };
    Ok(Finished { output, output_bytes, duration_ms, work_units: run.work_units, device })
}
