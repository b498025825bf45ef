//! Chained jobs: the input of a job's next task, made on a blocking thread
//! from the task before's input and accepted output
//! (`iog_workloads::next_input`), stored as a blob, and reported to the
//! engine as `Event::ChainInputReady` (or `Event::ChainInputFailed` when
//! the workload cannot make it).

use anyhow::Context;
use iog_core::Event;
use iog_store::Store;
use iog_types::{BlobId, JobId};
use tokio::sync::mpsc;

use crate::engine::Command;

/// Makes task `task_idx`'s input and reports it to the engine (if it
/// still runs). A store error is tried again a few times (the core asks
/// again after `spot_check_timeout_ms`, and fails the job after three
/// asks); a workload that cannot make the input fails the job.
pub(crate) async fn make_and_report(
    store: Store,
    engine: mpsc::WeakSender<Command>,
    job_id: JobId,
    task_idx: u32,
    previous_input: BlobId,
    previous_output: BlobId,
) {
    let what = format!("input of {job_id}'s task {task_idx}");
    crate::spot::report_with_tries(engine, &what, || async {
        Ok(match make(&store, job_id, task_idx, previous_input, previous_output).await? {
            Ok(input) => {
                tracing::info!(job_id = %job_id, task_idx, input = %input, "next task of the chain made");
                Event::ChainInputReady { job_id, task_idx, input }
            }
            Err(reason) => {
                tracing::warn!(job_id = %job_id, task_idx, reason, "next task of the chain cannot be made");
                Event::ChainInputFailed { job_id, task_idx, reason }
            }
        })
    })
    .await;
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
    // An output no task input could hold is refused unread.
    let len =
        store.blob_len(previous_output).await?.with_context(|| format!("output blob {previous_output} is missing"))?;
    if len > iog_workloads::TASK_INPUT_BYTES_MAX as u64 {
        let max = iog_workloads::TASK_INPUT_BYTES_MAX;
        return Ok(Err(format!("the task before's accepted output is {len} bytes; a task input holds at most {max}")));
    }
    let input =
        store.get_blob(previous_input).await?.with_context(|| format!("input blob {previous_input} is missing"))?;
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
