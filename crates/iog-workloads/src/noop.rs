//! The `noop` workload: empty tasks, for measuring the scheduling machinery
//! without any work in the way.

use serde::{Deserialize, Serialize};

use crate::task::MAX_TASKS;
use crate::{Artifact, AssembleError, SpecError, TaskRun, check};

/// Parameters of the `noop` workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoopSpec {
    /// How many empty tasks, 1 to 1000000.
    pub n_tasks: u64,
    /// How long each task holds its device, doing nothing, in milliseconds
    /// (0 to 600000; default 0). Lets tests and benchmarks give tasks a
    /// length without giving them work.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub task_ms: u64,
}

fn is_zero(ms: &u64) -> bool {
    *ms == 0
}

/// Longest `noop.task_ms`.
pub const NOOP_TASK_MS_MAX: u64 = 600_000;

impl NoopSpec {
    /// Checks `n_tasks` and `task_ms`.
    pub fn validate(&self) -> Result<(), SpecError> {
        check::between("noop.n_tasks", self.n_tasks, 1, MAX_TASKS)?;
        check::between("noop.task_ms", self.task_ms, 0, NOOP_TASK_MS_MAX)
    }
}

/// The input of one noop task: only its index, so inputs differ and are
/// stored as distinct blobs like real tasks' inputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NoopTask {
    task_idx: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    task_ms: u64,
}

pub(crate) fn plan(spec: &NoopSpec) -> Result<Vec<NoopTask>, SpecError> {
    spec.validate()?;
    Ok((0..spec.n_tasks).map(|task_idx| NoopTask { task_idx, task_ms: spec.task_ms }).collect())
}

pub(crate) fn run(task: &NoopTask) -> TaskRun {
    if task.task_ms > 0 {
        std::thread::sleep(std::time::Duration::from_millis(task.task_ms.min(NOOP_TASK_MS_MAX)));
    }
    TaskRun { output: Vec::new(), work_units: 0 }
}

/// `result.json` with the task count; every output must be empty.
pub(crate) fn assemble(spec: &NoopSpec, outputs: &[Vec<u8>]) -> Result<Vec<Artifact>, AssembleError> {
    if let Some((task_idx, output)) = outputs.iter().enumerate().find(|(_, output)| !output.is_empty()) {
        return Err(AssembleError::OutputLength { task_idx, expected_bytes: 0, got_bytes: output.len() });
    }
    let result = serde_json::json!({ "workload": "noop", "n_tasks": spec.n_tasks });
    Ok(vec![Artifact {
        name: "result.json".to_owned(),
        media_type: "application/json".to_owned(),
        bytes: serde_json::to_vec_pretty(&result).expect("a JSON value serializes"),
    }])
}
