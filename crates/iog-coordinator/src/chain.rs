//! Chained jobs: the input of a job's next task, made on a blocking thread
//! from the task before's input and accepted output
//! (`iog_workloads::next_input`), stored as a blob, and reported to the
//! engine as `Event::ChainInputReady` (or `Event::ChainInputFailed` when
//! the workload cannot make it).

use std::time::Duration;

use anyhow::Context;
use iog_core::Event;
use iog_store::Store;
use iog_types::{BlobId, JobId};
use tokio::sync::mpsc;

use crate::engine::Command;

/// Tries of a step that cannot read or write its blobs (the coordinator's
/// trouble, not the job's), a second apart. After the last the core asks
/// again (`spot_check_timeout_ms`), and fails the job after three asks.
const TRIES_MAX: u32 = 5;

/// Makes task `task_idx`'s input and reports it to the engine (if it still runs).
pub(crate) async fn make_and_report(
    store: Store,
    engine: mpsc::WeakSender<Command>,
    job_id: JobId,
    task_idx: u32,
    previous_input: BlobId,
    previous_output: BlobId,
) {
    for attempt in 1..=TRIES_MAX {
        let event = match make(&store, job_id, task_idx, previous_input, previous_output).await {
            Ok(Ok(input)) => {
                tracing::info!(job_id = %job_id, task_idx, input = %input, "next task of the chain made");
                Event::ChainInputReady { job_id, task_idx, input }
            }
            Ok(Err(reason)) => {
                tracing::warn!(job_id = %job_id, task_idx, reason, "next task of the chain cannot be made");
                Event::ChainInputFailed { job_id, task_idx, reason }
            }
            Err(err) => {
                tracing::error!(job_id = %job_id, task_idx, attempt, error = format!("{err:#}"), "chain step could not run");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if let Some(engine) = engine.upgrade() {
            let _ = engine.send(Command::Event { event, blob: None }).await;
        }
        return;
    }
}

/// The stored next input, or why the workload cannot make it (the inner
/// error); the outer error is the store's.
async fn make(
    store: &Store,
    job_id: JobId,
    task_idx: u32,
    previous_input: BlobId,
    previous_output: BlobId,
) -> anyhow::Result<Result<BlobId, String>> {
    let job = store.job(job_id).await?.with_context(|| format!("job {job_id} is missing"))?;
    let input = store.get_blob(previous_input).await?.with_context(|| format!("input blob {previous_input} is missing"))?;
    let output =
        store.get_blob(previous_output).await?.with_context(|| format!("output blob {previous_output} is missing"))?;
    let made = tokio::task::spawn_blocking(move || {
        let spec = iog_workloads::parse_job_json(&job.spec_json).map_err(|err| format!("its stored spec: {err}"))?;
        let workload = spec.workload().map_err(|err| format!("its stored spec: {err}"))?;
        iog_workloads::next_input(&workload, u64::from(task_idx), &input, &output).map_err(|err| err.to_string())
    })
    .await
    .context("join the chain step")?;
    match made {
        Ok(bytes) => Ok(Ok(store.put_blob(bytes).await?)),
        Err(reason) => Ok(Err(reason)),
    }
}
