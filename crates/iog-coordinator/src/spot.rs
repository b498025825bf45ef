//! Spot checks of results: a sample of a run's output recomputed on a
//! blocking thread, then reported to the engine as `Event::SpotChecked`.

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

/// Checks one run and reports the outcome to the engine (if it still runs).
pub(crate) async fn check_and_report(
    store: Store,
    engine: mpsc::WeakSender<Command>,
    task_id: TaskId,
    input: BlobId,
    output: BlobId,
    seed: u64,
) {
    for attempt in 1..=CHECK_TRIES_MAX {
        match check(&store, input, output, seed).await {
            Ok(spot) => {
                if spot.passed {
                    tracing::debug!(task_id = %task_id, detail = spot.detail, "spot check passed");
                } else {
                    tracing::warn!(task_id = %task_id, detail = spot.detail, "spot check failed");
                }
                let event = Event::SpotChecked { task_id, passed: spot.passed, detail: spot.detail };
                if let Some(engine) = engine.upgrade() {
                    let _ = engine.send(Command::Event { event, blob: None }).await;
                }
                return;
            }
            Err(err) => {
                tracing::error!(task_id = %task_id, attempt, error = format!("{err:#}"), "spot check could not run");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn check(store: &Store, input: BlobId, output: BlobId, seed: u64) -> anyhow::Result<iog_workloads::Spot> {
    let input_bytes = store.get_blob(input).await?.with_context(|| format!("input blob {input} is missing"))?;
    let output_bytes = store.get_blob(output).await?.with_context(|| format!("output blob {output} is missing"))?;
    tokio::task::spawn_blocking(move || iog_workloads::spot_check(&input_bytes, &output_bytes, seed))
        .await
        .context("join the spot check")?
        .context("decode the task's input")
}
