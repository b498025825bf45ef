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

/// Each output's class: the first output it agrees with
/// (`iog_workloads::outputs_agree`).
async fn compare(store: &Store, input: BlobId, outputs: &[BlobId]) -> anyhow::Result<Vec<u8>> {
    let input_bytes = store.get_blob(input).await?.with_context(|| format!("input blob {input} is missing"))?;
    let mut bytes = Vec::with_capacity(outputs.len());
    for output in outputs {
        bytes.push(store.get_blob(*output).await?.with_context(|| format!("output blob {output} is missing"))?);
    }
    tokio::task::spawn_blocking(move || classes_of(&input_bytes, &bytes))
        .await
        .context("join the comparison")?
        .context("decode the task's input")
}

/// `classes[r]`: the first output that output `r` agrees with (`r` itself
/// when none before it does). Identical outputs always share a class.
fn classes_of(input: &[u8], outputs: &[Vec<u8>]) -> Result<Vec<u8>, iog_workloads::RunError> {
    let mut classes: Vec<u8> = Vec::with_capacity(outputs.len());
    for (r, output) in outputs.iter().enumerate() {
        let mut class = r;
        for head in (0..r).filter(|head| usize::from(classes[*head]) == *head) {
            if iog_workloads::outputs_agree(input, &outputs[head], output)? {
                class = head;
                break;
            }
        }
        classes.push(u8::try_from(class).unwrap_or(u8::MAX));
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
    fn outputs_are_classed_by_the_first_they_agree_with() {
        let spec: iog_workloads::SimSpec =
            serde_json::from_str(r#"{"model": "option", "tasks": 1, "samples_per_task": 6400, "seed": 5}"#).unwrap();
        let input = iog_workloads::plan(&iog_workloads::WorkloadSpec::Sim(spec)).unwrap().remove(0);
        let right = iog_workloads::run_task(&input).unwrap().output;
        // The right result in other bits (as a GPU's f32 sums give it), and a wrong one.
        let text = String::from_utf8(right.clone()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let nudge = |factor: f64| {
            let mut value = value.clone();
            for block in value["blocks"].as_array_mut().unwrap() {
                let sum = block["sum"].as_f64().unwrap();
                block["sum"] = serde_json::json!(sum * factor);
            }
            serde_json::to_vec(&value).unwrap()
        };
        let (elsewhere, wrong) = (nudge(1.0 + 1e-7), nudge(1.05));
        let outputs = [wrong.clone(), right.clone(), elsewhere, wrong, right];
        assert_eq!(classes_of(&input, &outputs).unwrap(), [0, 1, 1, 0, 1]);
        assert!(classes_of(b"not a task", &outputs).is_err());
    }
}
