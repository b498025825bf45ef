//! Spot checks of results: a sample of a run's output recomputed on a
//! blocking thread, then reported to the engine as `Event::SpotChecked`;
//! and comparisons of replicas whose digests differ, within the workload's
//! tolerance, reported as `Event::OutputsCompared`.

use std::time::Duration;

use anyhow::Context;
use iog_core::Event;
use iog_store::Store;
use iog_types::{BlobId, TaskId};
use tokio::sync::mpsc;

use crate::engine::Command;

/// Tries of a check that cannot read its blobs (a store error is the
/// coordinator's trouble, not the worker's), a second apart. After the
/// last the core asks again (`spot_check_timeout_ms`), and fails the job
/// after three asks.
const CHECK_TRIES_MAX: u32 = 5;

/// Runs `work` until it gives its event, at most [`CHECK_TRIES_MAX`] times
/// a second apart, and sends the event to the engine (if it still runs).
/// `what` names the work in the log.
pub(crate) async fn report_with_tries<F, Fut>(engine: mpsc::WeakSender<Command>, what: &str, mut work: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Event>>,
{
    for attempt in 1..=CHECK_TRIES_MAX {
        match work().await {
            Ok(event) => {
                if let Some(engine) = engine.upgrade() {
                    let _ = engine.send(Command::Event { event, blob: None }).await;
                }
                return;
            }
            Err(err) => {
                tracing::error!(what, attempt, error = format!("{err:#}"), "coordinator-side work could not run");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

/// Checks one run and reports the outcome to the engine (if it still runs).
pub(crate) async fn check_and_report(
    store: Store,
    engine: mpsc::WeakSender<Command>,
    task_id: TaskId,
    input: BlobId,
    output: BlobId,
    seed: u64,
) {
    let what = format!("spot check of {task_id}");
    report_with_tries(engine, &what, || async {
        let spot = check(&store, input, output, seed).await?;
        if spot.passed {
            tracing::debug!(task_id = %task_id, detail = spot.detail, "spot check passed");
        } else {
            tracing::warn!(task_id = %task_id, detail = spot.detail, "spot check failed");
        }
        Ok(Event::SpotChecked { task_id, passed: spot.passed, detail: spot.detail })
    })
    .await;
}

/// Compares a task's replicas' outputs and reports which agree to the
/// engine (if it still runs).
pub(crate) async fn compare_and_report(
    store: Store,
    engine: mpsc::WeakSender<Command>,
    task_id: TaskId,
    input: BlobId,
    outputs: Vec<BlobId>,
) {
    let what = format!("comparison of {task_id}'s replicas");
    report_with_tries(engine, &what, || async {
        let classes = compare(&store, input, &outputs).await?;
        tracing::info!(task_id = %task_id, ?classes, "replicas' differing outputs compared");
        Ok(Event::OutputsCompared { task_id, outputs: outputs.clone(), classes })
    })
    .await;
}

/// Largest output a comparison reads. A `sim` task's output is its 64
/// blocks' sums, a few KiB; a render tile's RGB8 bytes are at most
/// 1024 × 1024 × 3 (3 MiB); an `infer` task's at most 2¹⁸ values in
/// base64 with its rows' labels or targets (under 4 MiB); a `train`
/// task's int8 pseudo-gradient of at most 2²¹ values, in base64, with its
/// losses. A larger one cannot be a right one, so it is classed by its
/// digest unread.
const COMPARED_OUTPUT_BYTES_MAX: u64 = 4 << 20;

/// Each output's class (see [`classes_of`]). Only tasks whose outputs may
/// differ in bytes and agree (`iog_workloads::compares_within_tolerance`)
/// have their outputs read, and only outputs of at most
/// [`COMPARED_OUTPUT_BYTES_MAX`]; any other task's, or a sealed task's, are
/// classed by digest alone.
async fn compare(store: &Store, input: BlobId, outputs: &[BlobId]) -> anyhow::Result<Vec<u8>> {
    let input_bytes = store.get_blob(input).await?.with_context(|| format!("input blob {input} is missing"))?;
    let tolerant = iog_workloads::compares_within_tolerance(&input_bytes);
    let mut read = Vec::with_capacity(outputs.len());
    for output in outputs {
        let len = store.blob_len(*output).await?.with_context(|| format!("output blob {output} is missing"))?;
        let bytes = if tolerant && len <= COMPARED_OUTPUT_BYTES_MAX {
            store.get_blob(*output).await?.with_context(|| format!("output blob {output} is missing"))?.into()
        } else {
            None
        };
        read.push((*output, bytes));
    }
    tokio::task::spawn_blocking(move || classes_of(&input_bytes, &read))
        .await
        .context("join the comparison")?
        .context("decode the task's input")
}

/// `classes[r]`: the class of the first earlier output that output `r`
/// agrees with (`r` itself when none does). Outputs agree when their
/// digests are equal, or when both were read and the workload says so
/// (`iog_workloads::outputs_agree`). Agreement within a tolerance is not
/// transitive (two GPUs may each be near the CPU's answer and a little
/// further from each other), so an output joins a class through any of its
/// members, not only its first.
fn classes_of(input: &[u8], outputs: &[(BlobId, Option<Vec<u8>>)]) -> Result<Vec<u8>, iog_workloads::RunError> {
    let mut classes: Vec<u8> = Vec::with_capacity(outputs.len());
    for (r, (digest, bytes)) in outputs.iter().enumerate() {
        let mut class = u8::try_from(r).unwrap_or(u8::MAX);
        for (earlier, (earlier_digest, earlier_bytes)) in outputs[..r].iter().enumerate() {
            let agree = match (earlier_bytes, bytes) {
                _ if earlier_digest == digest => true,
                (Some(a), Some(b)) => iog_workloads::outputs_agree(input, a, b)?,
                _ => false,
            };
            if agree {
                class = classes[earlier];
                break;
            }
        }
        classes.push(class);
    }
    Ok(classes)
}

async fn check(store: &Store, input: BlobId, output: BlobId, seed: u64) -> anyhow::Result<iog_workloads::Spot> {
    let input_bytes = store.get_blob(input).await?.with_context(|| format!("input blob {input} is missing"))?;
    let output_bytes = store.get_blob(output).await?.with_context(|| format!("output blob {output} is missing"))?;
    tokio::task::spawn_blocking(move || iog_workloads::spot_check(&input_bytes, &output_bytes, seed))
        .await
        .context("join the spot check")?
        .context("decode the task's input")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_of_gpu_tasks_are_classed_within_tolerance_through_any_member() {
        let spec: iog_workloads::SimSpec =
            serde_json::from_str(r#"{"model": "option", "tasks": 1, "samples_per_task": 6400, "seed": 5}"#).unwrap();
        let workload = iog_workloads::WorkloadSpec::Sim(spec);
        let on_gpu = iog_workloads::plan_on(&workload, iog_workloads::DeviceChoice::Gpu).unwrap().remove(0);
        let on_cpu = iog_workloads::plan(&workload).unwrap().remove(0);
        let right = iog_workloads::run_task(&on_cpu).unwrap().output;
        assert_eq!(right, iog_workloads::run_task(&on_gpu).unwrap().output);
        // Each block's sum moved by `share` of the tolerance (10⁻⁴ of
        // √(n·Σx²)): two GPUs 0.7 of it either side of the CPU agree with
        // the CPU, not with each other.
        let value: serde_json::Value = serde_json::from_slice(&right).unwrap();
        let moved = |share: f64| {
            let mut value = value.clone();
            for block in value["blocks"].as_array_mut().unwrap() {
                let (n, sum, sum_sq) =
                    (block["n"].as_f64().unwrap(), block["sum"].as_f64().unwrap(), block["sum_sq"].as_f64().unwrap());
                block["sum"] = serde_json::json!(sum + share * 1e-4 * (n * sum_sq).sqrt());
            }
            serde_json::to_vec(&value).unwrap()
        };
        let (above, below, wrong) = (moved(0.7), moved(-0.7), moved(30.0));
        assert!(!iog_workloads::outputs_agree(&on_gpu, &above, &below).unwrap());
        let read = |outputs: &[&Vec<u8>]| -> Vec<(BlobId, Option<Vec<u8>>)> {
            outputs.iter().map(|bytes| (BlobId::of(bytes), Some((*bytes).clone()))).collect()
        };
        let outputs = read(&[&above, &right, &below, &wrong, &right]);
        assert_eq!(classes_of(&on_gpu, &outputs).unwrap(), [0, 0, 0, 3, 0]);
        // An output not read (too large) agrees only with its own digest.
        let mut unread = read(&[&right, &above, &right]);
        unread[0].1 = None;
        assert_eq!(classes_of(&on_gpu, &unread).unwrap(), [0, 1, 0]);
        // A CPU task's outputs agree byte for byte only.
        assert_eq!(classes_of(&on_cpu, &read(&[&above, &right, &wrong, &right])).unwrap(), [0, 1, 2, 1]);
        assert!(!iog_workloads::compares_within_tolerance(&on_cpu));
        assert!(iog_workloads::compares_within_tolerance(&on_gpu));
        assert!(!iog_workloads::compares_within_tolerance(b"sealed ciphertext"));
    }
}
