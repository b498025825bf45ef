//! Chained jobs: the inputs of a job's next link of tasks, made on a
//! blocking thread from the link before's inputs and accepted outputs
//! and the state blob its first input names (`iog_workloads::chain_state`,
//! a training round's outer momentum, which no worker is sent), stored as
//! blobs (the new state first), and reported to the
//! engine as `Event::ChainInputReady` (or `Event::ChainInputFailed` when
//! the workload cannot make it).

use anyhow::Context;
use iog_core::Event;
use iog_store::Store;
use iog_types::{BlobId, JobId};
use tokio::sync::mpsc;

use crate::engine::Command;

/// Makes the inputs of the link starting at task `task_idx` and reports
/// them to the engine (if it still runs). A store error is tried again a
/// few times (the core asks again after `spot_check_timeout_ms`, and fails
/// the job after three asks); a workload that cannot make the inputs fails
/// the job.
pub(crate) async fn make_and_report(
    store: Store,
    engine: mpsc::WeakSender<Command>,
    job_id: JobId,
    task_idx: u32,
    previous: Vec<(BlobId, BlobId)>,
) {
    let what = format!("inputs of {job_id}'s tasks from {task_idx} on");
    crate::spot::report_with_tries(engine, &what, || async {
        Ok(match make(&store, job_id, task_idx, &previous).await? {
            Ok(inputs) => {
                tracing::info!(job_id = %job_id, task_idx, tasks = inputs.len(), "next link of the chain made");
                Event::ChainInputReady { job_id, task_idx, inputs }
            }
            Err(reason) => {
                tracing::warn!(job_id = %job_id, task_idx, reason, "next link of the chain cannot be made");
                Event::ChainInputFailed { job_id, task_idx, reason }
            }
        })
    })
    .await;
}

/// The stored next inputs, or why the workload cannot make them (the
/// inner error); the outer error is the store's.
async fn make(
    store: &Store,
    job_id: JobId,
    task_idx: u32,
    previous: &[(BlobId, BlobId)],
) -> anyhow::Result<Result<Vec<BlobId>, String>> {
    let job = store.job(job_id).await?.with_context(|| format!("job {job_id} is missing"))?;
    let mut pairs = Vec::with_capacity(previous.len());
    for &(previous_input, previous_output) in previous {
        // An output no task input could hold is refused unread.
        let len = store
            .blob_len(previous_output)
            .await?
            .with_context(|| format!("output blob {previous_output} is missing"))?;
        if len > iog_workloads::TASK_INPUT_BYTES_MAX as u64 {
            let max = iog_workloads::TASK_INPUT_BYTES_MAX;
            return Ok(Err(format!(
                "an accepted output of the link before is {len} bytes; a task input holds at most {max}"
            )));
        }
        let input =
            store.get_blob(previous_input).await?.with_context(|| format!("input blob {previous_input} is missing"))?;
        let output = store
            .get_blob(previous_output)
            .await?
            .with_context(|| format!("output blob {previous_output} is missing"))?;
        pairs.push((input, output));
    }
    let state = match pairs.first().and_then(|(input, _)| iog_workloads::chain_state(input)) {
        Some(blob) => Some(store.get_blob(blob).await?.with_context(|| format!("state blob {blob} is missing"))?),
        None => None,
    };
    let made = tokio::task::spawn_blocking(move || {
        let spec = iog_workloads::parse_job_json(&job.spec_json).map_err(|err| format!("its stored spec: {err}"))?;
        let workload = spec.workload().map_err(|err| format!("its stored spec: {err}"))?;
        iog_workloads::next_inputs(&workload, u64::from(task_idx), &pairs, state.as_deref())
            .map_err(|err| err.to_string())
    })
    .await
    .context("join the chain step")?;
    match made {
        Ok(link) => {
            // The state is stored before any input that names it.
            if let Some(state) = link.state {
                store.put_blob(state).await?;
            }
            let mut blobs = Vec::with_capacity(link.inputs.len());
            for bytes in link.inputs {
                blobs.push(store.put_blob(bytes).await?);
            }
            Ok(Ok(blobs))
        }
        Err(reason) => Ok(Err(reason)),
    }
}
