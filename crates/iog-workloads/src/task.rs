//! The three steps of every job: [`plan`] it into task inputs, [`run_task`]
//! each input on a worker, [`assemble`] the outputs into artifacts.

use serde::{Deserialize, Serialize};

use crate::accel::{Accelerator, DeviceChoice, Ran};
use crate::blender;
use crate::hash::tasks::{self as hash_tasks, HashTask};
use crate::infer::{self, InferTask};
use crate::nbody::{self, NbodyTask};
use crate::noop::{self, NoopTask};
use crate::process::{self, ProcessTaskInput};
use crate::render::tiles::{self, RenderTask};
use crate::sim::{self, SimTask};
use crate::spec::from_json;
use crate::spot::Spot;
use crate::train::{self, TrainTask};
use crate::wasm::{self, WasmTaskInput};
use crate::{SpecError, WorkloadSpec};

/// Most tasks one job may split into.
pub const MAX_TASKS: u64 = 1_000_000;

/// Largest task input [`run_task`] accepts, in bytes. Real inputs are far
/// smaller (a render tile carries its scene, at most a few MiB).
pub const TASK_INPUT_BYTES_MAX: usize = 64 << 20;

/// A task input: tagged by workload, so a worker can run it without the job.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "workload", rename_all = "lowercase")]
enum TaskInput {
    Render(RenderTask),
    Hash(HashTask),
    Noop(NoopTask),
    Sim(SimTask),
    Nbody(NbodyTask),
    Wasm(WasmTaskInput),
    Process(ProcessTaskInput),
    Train(Box<TrainTask>),
    Infer(Box<InferTask>),
}

/// Task inputs that travel in binary form ([`to_binary`]): a `train`
/// round's weights, momentum and data as raw bytes rather than base64.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum BinaryInput {
    Train(Box<TrainTask>),
}

/// The first bytes of a task input or output in binary form: CBOR's
/// self-described tag (RFC 8949, section 3.4.6), with which no JSON text starts.
const BINARY_MAGIC: [u8; 3] = [0xd9, 0xd9, 0xf7];

/// `value` in binary form: [`BINARY_MAGIC`], then CBOR, where byte fields
/// are raw bytes (JSON carries them in base64, a third larger). The same
/// value always gives the same bytes.
pub(crate) fn to_binary<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = BINARY_MAGIC.to_vec();
    ciborium::into_writer(value, &mut bytes).expect("plain data encodes");
    bytes
}

/// Reads a value from its binary form ([`to_binary`]) or from JSON.
pub(crate) fn from_binary_or_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, SpecError> {
    let Some(mut cbor) = bytes.strip_prefix(&BINARY_MAGIC) else { return from_json(bytes) };
    let value = ciborium::from_reader(&mut cbor).map_err(|err| SpecError::syntax("CBOR", None, &err.to_string()))?;
    // One value and nothing after it, as for JSON: bytes appended to an
    // output would change its digest and not its reading.
    if !cbor.is_empty() {
        return Err(SpecError::syntax("CBOR", None, &format!("{} bytes follow the value", cbor.len())));
    }
    Ok(value)
}

/// A task input or output as JSON, whichever form it is in: a binary one
/// ([`to_binary`]) is converted, its byte fields to base64 strings as JSON
/// carries them. For tools that look inside tasks.
pub fn json_view(bytes: &[u8]) -> Result<serde_json::Value, SpecError> {
    fn convert(value: ciborium::Value) -> Result<serde_json::Value, SpecError> {
        use base64::Engine as _;
        use ciborium::Value as C;
        use serde_json::Value as J;
        Ok(match value {
            C::Null => J::Null,
            C::Bool(b) => J::Bool(b),
            C::Integer(n) => {
                let n = i128::from(n);
                match (u64::try_from(n), i64::try_from(n)) {
                    (Ok(n), _) => J::from(n),
                    (_, Ok(n)) => J::from(n),
                    _ => return Err(SpecError::syntax("CBOR", None, &format!("integer {n} is out of range"))),
                }
            }
            C::Float(x) => J::from(x),
            C::Text(text) => J::String(text),
            C::Bytes(bytes) => J::String(base64::engine::general_purpose::STANDARD.encode(bytes)),
            C::Tag(_, inner) => convert(*inner)?,
            C::Array(items) => J::Array(items.into_iter().map(convert).collect::<Result<_, _>>()?),
            C::Map(pairs) => {
                let mut map = serde_json::Map::new();
                for (key, value) in pairs {
                    let C::Text(key) = key else {
                        return Err(SpecError::syntax("CBOR", None, "a map key is not text"));
                    };
                    map.insert(key, convert(value)?);
                }
                J::Object(map)
            }
            _ => return Err(SpecError::syntax("CBOR", None, "holds a value JSON has no form for")),
        })
    }
    if !bytes.starts_with(&BINARY_MAGIC) {
        return from_json(bytes);
    }
    // A task input reads as its JSON form would.
    if let Ok(input) = from_binary_or_json::<BinaryInput>(bytes) {
        let input = match input {
            BinaryInput::Train(task) => TaskInput::Train(task),
        };
        return Ok(serde_json::to_value(input).expect("task inputs are plain data"));
    }
    convert(from_binary_or_json(bytes)?)
}

/// A task input's bytes: binary for `train` ([`BinaryInput`]), JSON for the rest.
fn encode_input(input: TaskInput) -> Vec<u8> {
    match input {
        TaskInput::Train(task) => to_binary(&BinaryInput::Train(task)),
        input => serde_json::to_vec(&input).expect("task inputs are plain data"),
    }
}

/// Reads a task input in either form.
fn decode_input(bytes: &[u8]) -> Result<TaskInput, SpecError> {
    if bytes.starts_with(&BINARY_MAGIC) {
        return Ok(match from_binary_or_json::<BinaryInput>(bytes)? {
            BinaryInput::Train(task) => TaskInput::Train(task),
        });
    }
    from_json(bytes)
}

/// A task input, read: either a built-in workload's, which [`run_task`]
/// runs, or users' code, which only a worker with that executor can run.
#[derive(Debug, Clone)]
pub enum Decoded {
    /// A built-in workload's task: give the bytes to [`run_task`], or to
    /// [`run_task_on`] with the worker's kernels for a GPU.
    BuiltIn {
        /// The job asked for a GPU and the workload has GPU kernels.
        gpu: bool,
    },
    /// A `wasm` task: its module, files and limits.
    Wasm(WasmTaskInput),
    /// A `process` (or `blender`) task: its command, files and limits.
    Process(ProcessTaskInput),
    /// An `infer` task: fetch its [`InferTask::blobs`], then run it with
    /// [`crate::infer::run`].
    Infer(Box<InferTask>),
}

/// Reads a task input far enough to tell who can run it.
pub fn decode_task(input: &[u8]) -> Result<Decoded, RunError> {
    if input.len() > TASK_INPUT_BYTES_MAX {
        return Err(RunError::TooLarge { got_bytes: input.len(), max_bytes: TASK_INPUT_BYTES_MAX });
    }
    match decode_input(input).map_err(RunError::Decode)? {
        TaskInput::Wasm(task) => Ok(Decoded::Wasm(task)),
        TaskInput::Process(task) => Ok(Decoded::Process(task)),
        TaskInput::Infer(task) => Ok(Decoded::Infer(task)),
        TaskInput::Hash(task) => Ok(Decoded::BuiltIn { gpu: task.wants_gpu() }),
        TaskInput::Sim(task) => Ok(Decoded::BuiltIn { gpu: task.wants_gpu() }),
        TaskInput::Render(task) => Ok(Decoded::BuiltIn { gpu: task.wants_gpu() }),
        TaskInput::Nbody(task) => Ok(Decoded::BuiltIn { gpu: task.wants_gpu() }),
        _ => Ok(Decoded::BuiltIn { gpu: false }),
    }
}

/// What running one task produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRun {
    /// Deterministic bytes: the same input gives the same output on any
    /// machine (this is what gets content-addressed and later compared
    /// between replicas).
    pub output: Vec<u8>,
    /// Units of work done (pixels times samples for render, hashes for hash,
    /// 0 for noop), for rates.
    pub work_units: u64,
}

/// A file the job produces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    /// File name, such as `image.png`.
    pub name: String,
    /// Media type, such as `image/png`.
    pub media_type: String,
    /// The file's contents.
    pub bytes: Vec<u8>,
}

/// A task input that cannot be run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunError {
    /// The input is larger than [`TASK_INPUT_BYTES_MAX`].
    #[error("task input is {got_bytes} bytes, at most {max_bytes} are accepted")]
    TooLarge {
        /// The input's size.
        got_bytes: usize,
        /// The limit.
        max_bytes: usize,
    },
    /// The bytes are not a task input.
    #[error("decode task input: {0}")]
    Decode(SpecError),
    /// The input decodes but its values are out of range.
    #[error("invalid task input: {0}")]
    Invalid(SpecError),
}

/// Task outputs that do not make up the job's result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssembleError {
    /// The spec itself is invalid.
    #[error("invalid job spec: {0}")]
    Spec(#[from] SpecError),
    /// Not one output per planned task.
    #[error("expected {expected} task outputs (one per task), got {got}")]
    OutputCount {
        /// Tasks planned.
        expected: usize,
        /// Outputs given.
        got: usize,
    },
    /// Not one duration per planned task.
    #[error("expected {expected} task durations (one per task), got {got}")]
    DurationCount {
        /// Tasks planned.
        expected: usize,
        /// Durations given.
        got: usize,
    },
    /// An output of the wrong size.
    #[error("task {task_idx} output is {got_bytes} bytes, expected {expected_bytes}")]
    OutputLength {
        /// The task's index.
        task_idx: usize,
        /// The size the task should produce.
        expected_bytes: usize,
        /// The size it produced.
        got_bytes: usize,
    },
    /// An output that does not decode or contradicts its task.
    #[error("task {task_idx} output is invalid: {reason}")]
    BadOutput {
        /// The task's index.
        task_idx: usize,
        /// What is wrong.
        reason: String,
    },
}

impl AssembleError {
    /// The index of the task whose output is at fault, where one is.
    pub fn task_idx(&self) -> Option<usize> {
        match self {
            AssembleError::OutputLength { task_idx, .. } | AssembleError::BadOutput { task_idx, .. } => Some(*task_idx),
            _ => None,
        }
    }
}

/// Splits a job into self-contained task inputs (JSON bytes); element `i` is
/// the input of task `i`. Validates the spec first. The tasks run on the
/// CPU; [`plan_on`] lets them ask for a GPU.
///
/// A chained workload (see [`chain_length`]) gives task 0's input only;
/// each later task's comes from [`next_input`] once the task before it has
/// an accepted output.
pub fn plan(spec: &WorkloadSpec) -> Result<Vec<Vec<u8>>, SpecError> {
    plan_on(spec, DeviceChoice::Cpu)
}

/// [`plan`], with tasks that ask for `device`: a hash, sim, render or nbody task
/// that asks for a GPU runs on its worker's GPU kernel where the worker
/// has one. Workloads
/// without GPU kernels plan the same either way.
pub fn plan_on(spec: &WorkloadSpec, device: DeviceChoice) -> Result<Vec<Vec<u8>>, SpecError> {
    let inputs: Vec<TaskInput> = match spec {
        WorkloadSpec::Render(spec) => tiles::plan(spec, device)?.into_iter().map(TaskInput::Render).collect(),
        WorkloadSpec::Hash(spec) => hash_tasks::plan(spec, device)?.into_iter().map(TaskInput::Hash).collect(),
        WorkloadSpec::Noop(spec) => noop::plan(spec)?.into_iter().map(TaskInput::Noop).collect(),
        WorkloadSpec::Sim(spec) => sim::plan(spec, device)?.into_iter().map(TaskInput::Sim).collect(),
        WorkloadSpec::Nbody(spec) => vec![TaskInput::Nbody(nbody::plan(spec, device)?)],
        WorkloadSpec::Wasm(spec) => wasm::plan(spec)?.into_iter().map(TaskInput::Wasm).collect(),
        WorkloadSpec::Process(spec) => process::plan(spec)?.into_iter().map(TaskInput::Process).collect(),
        WorkloadSpec::Blender(spec) => blender::plan(spec)?.into_iter().map(TaskInput::Process).collect(),
        WorkloadSpec::Train(spec) => {
            train::plan(spec)?.into_iter().map(|task| TaskInput::Train(Box::new(task))).collect()
        }
        WorkloadSpec::Infer(spec) => {
            infer::plan(spec)?.into_iter().map(|task| TaskInput::Infer(Box::new(task))).collect()
        }
    };
    Ok(inputs.into_iter().map(encode_input).collect())
}

/// How many tasks a chained workload runs, in links of as many tasks as
/// its [`plan`] gives, one link after another, each link's made from the
/// accepted outputs of the link before ([`next_inputs`]): `Some(windows)`
/// for `nbody`, whose links are one window each; `Some((rounds + 1) ×
/// workers)` for `train`, whose links are a round of one task per worker
/// (and a last one that scores the final weights). `None` for every other
/// workload, whose [`plan`] gives every input at once.
pub fn chain_length(spec: &WorkloadSpec) -> Option<u64> {
    match spec {
        WorkloadSpec::Nbody(spec) => Some(spec.windows),
        WorkloadSpec::Train(spec) => Some(spec.n_tasks()),
        _ => None,
    }
}

/// The input of task `task_idx` (at least 1) of a chained workload, made
/// from the input of task `task_idx − 1` and its accepted output: for
/// `nbody`, the next window, starting from the state the previous window
/// ended with. The previous output is checked first (it decodes, holds
/// one state per particle of finite numbers, belongs to window
/// `task_idx − 1` and starts from its input's state); a workload that is
/// not chained is an error.
pub fn next_input(
    spec: &WorkloadSpec,
    task_idx: u64,
    previous_input: &[u8],
    previous_output: &[u8],
) -> Result<Vec<u8>, RunError> {
    let WorkloadSpec::Nbody(nbody_spec) = spec else {
        return Err(RunError::Invalid(SpecError::invalid(
            "job.workload",
            format!("is {:?}, which is not chained: its plan gives every task's input at once", spec.kind()),
        )));
    };
    for bytes in [previous_input, previous_output] {
        if bytes.len() > TASK_INPUT_BYTES_MAX {
            return Err(RunError::TooLarge { got_bytes: bytes.len(), max_bytes: TASK_INPUT_BYTES_MAX });
        }
    }
    let previous: TaskInput = decode_input(previous_input).map_err(RunError::Decode)?;
    let TaskInput::Nbody(previous) = previous else {
        return Err(RunError::Invalid(SpecError::invalid("previous input", "is not an nbody task's input")));
    };
    let next = nbody::next_input(nbody_spec, task_idx, &previous, previous_output)?;
    Ok(serde_json::to_vec(&TaskInput::Nbody(next)).expect("task inputs are plain data"))
}

/// The next link of a chained job: its tasks' inputs, and the state the
/// coordinator keeps for the link after it (a `train` round's outer
/// momentum), which the first input names ([`chain_state`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The link's task inputs, in task order.
    pub inputs: Vec<Vec<u8>>,
    /// Bytes to store as a blob before the inputs are used: the link after
    /// this one is made with them.
    pub state: Option<Vec<u8>>,
}

/// The blob a chained job's next link is made with besides the link
/// before's inputs and outputs, as its first input names it: a `train`
/// round's outer momentum (none in round 0, which starts from zeros). Not a
/// task's concern: only the coordinator reads it.
pub fn chain_state(first_input: &[u8]) -> Option<iog_types::BlobId> {
    match decode_input(first_input) {
        Ok(TaskInput::Train(task)) => task.momentum_blob(),
        _ => None,
    }
}

/// The inputs of the link of a chained workload that starts at task
/// `task_idx`, from the link before's inputs and accepted outputs, in task
/// order (see [`chain_length`]), and the blob [`chain_state`] names in its
/// first input (`None` when it names none). For `nbody`, whose links are
/// one window, [`next_input`] of the one pair; for `train`, the next
/// round, whose weights are the outer step over the round's
/// pseudo-gradients, and whose momentum comes back as [`Link::state`].
pub fn next_inputs(
    spec: &WorkloadSpec,
    task_idx: u64,
    previous: &[(Vec<u8>, Vec<u8>)],
    state: Option<&[u8]>,
) -> Result<Link, RunError> {
    if let WorkloadSpec::Train(train_spec) = spec {
        let mut pairs = Vec::with_capacity(previous.len());
        for (input, output) in previous {
            for bytes in [input, output] {
                if bytes.len() > TASK_INPUT_BYTES_MAX {
                    return Err(RunError::TooLarge { got_bytes: bytes.len(), max_bytes: TASK_INPUT_BYTES_MAX });
                }
            }
            let TaskInput::Train(task) = decode_input(input).map_err(RunError::Decode)? else {
                return Err(RunError::Invalid(SpecError::invalid("previous input", "is not a train task's input")));
            };
            pairs.push((*task, output.as_slice()));
        }
        let (next, momentum) = train::next_inputs(train_spec, task_idx, &pairs, state).map_err(RunError::Invalid)?;
        return Ok(Link {
            inputs: next.into_iter().map(|task| encode_input(TaskInput::Train(Box::new(task)))).collect(),
            state: Some(momentum),
        });
    }
    let inputs = match (spec, previous) {
        (WorkloadSpec::Nbody(_), [(input, output)]) => vec![next_input(spec, task_idx, input, output)?],
        (WorkloadSpec::Nbody(_), _) => {
            return Err(RunError::Invalid(SpecError::invalid(
                "previous",
                format!("holds {} tasks' results; an nbody link is one window", previous.len()),
            )));
        }
        _ => vec![next_input(spec, task_idx, &[], &[])?],
    };
    Ok(Link { inputs, state: None })
}

/// Runs one task input on this machine's CPU, using all cores through rayon.
/// Bad bytes give a [`RunError`], never a panic.
pub fn run_task(input: &[u8]) -> Result<TaskRun, RunError> {
    Ok(run_task_on(input, None)?.run)
}

/// An nbody window's steps as a GPU kernel takes them (`None` for any
/// other task, and for a window whose start is not valid).
pub fn nbody_kernel_task(input: &[u8]) -> Result<Option<crate::nbody::NbodyKernelTask>, RunError> {
    if input.len() > TASK_INPUT_BYTES_MAX {
        return Err(RunError::TooLarge { got_bytes: input.len(), max_bytes: TASK_INPUT_BYTES_MAX });
    }
    match decode_input(input).map_err(RunError::Decode)? {
        TaskInput::Nbody(task) => task.kernel_task().map(Some).map_err(RunError::Invalid),
        _ => Ok(None),
    }
}

/// A render task's tile as a GPU kernel takes it (`None` for any other
/// task). The kernel's tile agrees with [`run_task`]'s within a PSNR bound
/// (see [`crate::render::kernel`]).
pub fn render_kernel_task(input: &[u8]) -> Result<Option<crate::render::kernel::RenderKernelTask>, RunError> {
    if input.len() > TASK_INPUT_BYTES_MAX {
        return Err(RunError::TooLarge { got_bytes: input.len(), max_bytes: TASK_INPUT_BYTES_MAX });
    }
    match decode_input(input).map_err(RunError::Decode)? {
        TaskInput::Render(task) => {
            crate::render::kernel::RenderKernelTask::new(&task).map(Some).map_err(RunError::Invalid)
        }
        _ => Ok(None),
    }
}

/// Runs one task input with `accel`'s kernels where it has one for the
/// task, else on this machine's CPU; says which ran it. The output bytes
/// are the same either way.
pub fn run_task_on(input: &[u8], accel: Option<&dyn Accelerator>) -> Result<Ran, RunError> {
    if input.len() > TASK_INPUT_BYTES_MAX {
        return Err(RunError::TooLarge { got_bytes: input.len(), max_bytes: TASK_INPUT_BYTES_MAX });
    }
    let input: TaskInput = decode_input(input).map_err(RunError::Decode)?;
    let on_cpu = |run: TaskRun| Ran { run, device: None, accel_error: None };
    match &input {
        TaskInput::Hash(task) => return hash_tasks::run_on(task, accel).map_err(RunError::Invalid),
        TaskInput::Render(task) => return tiles::run_on(task, accel).map_err(RunError::Invalid),
        TaskInput::Noop(task) => Ok(noop::run(task)),
        TaskInput::Sim(task) => return sim::run_on(task, accel).map_err(RunError::Invalid),
        TaskInput::Nbody(task) => return nbody::run_on(task, accel).map_err(RunError::Invalid),
        TaskInput::Train(task) => train::run(task),
        TaskInput::Wasm(_) => Err(SpecError::invalid(
            "workload",
            "is \"wasm\": its tasks run in a worker's WebAssembly executor (see decode_task), not here",
        )),
        TaskInput::Process(_) => Err(SpecError::invalid(
            "workload",
            "is \"process\": its tasks run in a worker's process sandbox (see decode_task), not here",
        )),
        TaskInput::Infer(_) => Err(SpecError::invalid(
            "workload",
            "is \"infer\": its tasks run with the weights and data they name (see decode_task and infer::run), \
             not here",
        )),
    }
    .map(on_cpu)
    .map_err(RunError::Invalid)
}

/// Checks a task's output by recomputing a sample of it, drawn from
/// `seed`: pixels of a render tile, a sub-range of a hash search, one
/// segment of an nbody window (bit for bit); an empty task's output must
/// be empty. Far cheaper than the task (see
/// [`crate::spot`] for the sample sizes); a wrong output that differs from
/// the right one in a share f of its samples passes with probability about
/// (1 − f)^samples.
pub fn spot_check(input: &[u8], output: &[u8], seed: u64) -> Result<Spot, RunError> {
    if input.len() > TASK_INPUT_BYTES_MAX {
        return Err(RunError::TooLarge { got_bytes: input.len(), max_bytes: TASK_INPUT_BYTES_MAX });
    }
    let input: TaskInput = decode_input(input).map_err(RunError::Decode)?;
    match &input {
        TaskInput::Render(task) => tiles::spot_check(task, output, seed, crate::spot::SPOT_PIXELS),
        TaskInput::Hash(task) => Ok(hash_tasks::spot_check(task, output, seed, crate::spot::SPOT_HASH_SHARE)),
        TaskInput::Noop(_) if output.is_empty() => {
            Ok(Spot { passed: true, detail: "empty, as it must be".to_owned(), work_units: 0 })
        }
        TaskInput::Noop(_) => Ok(Spot::failed(format!("is {} bytes; an empty task's output is empty", output.len()))),
        TaskInput::Sim(task) => Ok(sim::spot_check(task, output, seed)),
        TaskInput::Nbody(task) => nbody::spot_check(task, output, seed),
        TaskInput::Train(_) => train::spot_check(),
        TaskInput::Infer(_) => infer::spot_check(),
        TaskInput::Wasm(_) | TaskInput::Process(_) => Err(SpecError::invalid(
            "verify.policy",
            "is \"spot\", but the output of users' code cannot be sampled; such jobs verify by \"replicate\"",
        )),
    }
    .map_err(RunError::Invalid)
}

/// Whether a task's outputs may differ in bytes and still be one result:
/// only a `sim`, `render` or `nbody` task that asked for a GPU, whose
/// outputs agree within its workload's tolerance (a GPU's `f32` sums and a
/// CPU's `f64` ones are the same result; see [`crate::sim::Tolerance`],
/// [`crate::render::kernel`] and [`crate::nbody::NBODY_GPU_RELATIVE_ERROR`]). Every other task's outputs agree byte
/// for byte, so replicas whose digests differ need not be read to be told
/// apart. An input that does not decode (a sealed task's ciphertext)
/// compares byte for byte too.
pub fn compares_within_tolerance(input: &[u8]) -> bool {
    match decode_input(input) {
        Ok(TaskInput::Sim(task)) => task.tolerance().is_some(),
        Ok(TaskInput::Render(task)) => task.wants_gpu(),
        Ok(TaskInput::Nbody(task)) => task.wants_gpu(),
        Ok(TaskInput::Train(_) | TaskInput::Infer(_)) => true,
        _ => false,
    }
}

/// Whether two outputs of one task are the same result: within the
/// workload's tolerance where [`compares_within_tolerance`] says so, byte
/// for byte otherwise. Replicas of a task whose digests differ are grouped
/// by this before they are judged.
pub fn outputs_agree(input: &[u8], a: &[u8], b: &[u8]) -> Result<bool, RunError> {
    if input.len() > TASK_INPUT_BYTES_MAX {
        return Err(RunError::TooLarge { got_bytes: input.len(), max_bytes: TASK_INPUT_BYTES_MAX });
    }
    let input: TaskInput = decode_input(input).map_err(RunError::Decode)?;
    Ok(match &input {
        TaskInput::Sim(task) => sim::outputs_agree(task, a, b),
        TaskInput::Render(task) => tiles::outputs_agree(task, a, b),
        TaskInput::Nbody(task) => nbody::outputs_agree(task, a, b),
        TaskInput::Train(task) => train::outputs_agree(task, a, b),
        TaskInput::Infer(task) => infer::outputs_agree(task, a, b),
        _ => a == b,
    })
}

/// Whether the coordinator reads a `workload`'s outputs when they are
/// reported, to refuse malformed ones ([`check_output`]) before they count:
/// `train` and `infer`, whose outputs a later step reads (the next round's
/// outer step, the assembly) and which no spot check covers.
pub fn checks_outputs(workload: &str) -> bool {
    matches!(workload, "train" | "infer")
}

/// Whether `output` is well formed for the task `input`: its own (round,
/// shard or row range), whole, and of finite numbers, as the steps that
/// read it later require. Says nothing of whether it is right: replication
/// decides that. Every other task's output passes.
pub fn check_output(input: &[u8], output: &[u8]) -> Result<(), String> {
    if input.len() > TASK_INPUT_BYTES_MAX {
        return Err(format!("its task's input is {} bytes, more than {TASK_INPUT_BYTES_MAX}", input.len()));
    }
    let Ok(input) = decode_input(input) else { return Ok(()) };
    match &input {
        TaskInput::Train(task) => train::check_task_output(task, output),
        TaskInput::Infer(task) => infer::check_task_output(task, output),
        _ => Ok(()),
    }
}

/// Builds the job's artifacts from all task outputs, in task order.
///
/// `task_durations_ms[i]` is how long task `i` ran on its worker, one per
/// task. render gives `image.png`; hash gives `result.json` with the found
/// nonces sorted, total hashes and the hash rate; noop gives `result.json`
/// with the task count; nbody gives `result.json` (energies and their
/// drift), `energy.csv` and `state.json` (the final state), once each
/// window is found to start where the one before it ended; wasm and process give each task's files (see
/// [`crate::code`]); blender gives the frames.
pub fn assemble(
    spec: &WorkloadSpec,
    outputs: &[Vec<u8>],
    task_durations_ms: &[u64],
) -> Result<Vec<Artifact>, AssembleError> {
    spec.validate()?;
    let expected = match spec {
        WorkloadSpec::Render(spec) => spec.tiles().len(),
        WorkloadSpec::Hash(spec) => spec.n_tasks() as usize,
        WorkloadSpec::Noop(spec) => spec.n_tasks as usize,
        WorkloadSpec::Sim(spec) => spec.tasks as usize,
        WorkloadSpec::Nbody(spec) => spec.windows as usize,
        WorkloadSpec::Wasm(spec) => spec.n_tasks() as usize,
        WorkloadSpec::Process(spec) => spec.n_tasks() as usize,
        WorkloadSpec::Blender(spec) => spec.n_tasks() as usize,
        WorkloadSpec::Train(spec) => spec.n_tasks() as usize,
        WorkloadSpec::Infer(spec) => spec.n_tasks() as usize,
    };
    if outputs.len() != expected {
        return Err(AssembleError::OutputCount { expected, got: outputs.len() });
    }
    if task_durations_ms.len() != expected {
        return Err(AssembleError::DurationCount { expected, got: task_durations_ms.len() });
    }
    match spec {
        WorkloadSpec::Render(spec) => tiles::assemble(spec, outputs),
        WorkloadSpec::Hash(spec) => hash_tasks::assemble(spec, outputs, task_durations_ms),
        WorkloadSpec::Noop(spec) => noop::assemble(spec, outputs),
        WorkloadSpec::Sim(spec) => sim::assemble(spec, outputs),
        WorkloadSpec::Nbody(spec) => nbody::assemble(spec, outputs),
        WorkloadSpec::Wasm(spec) => wasm::assemble(spec, outputs),
        WorkloadSpec::Process(spec) => process::assemble(spec, outputs),
        WorkloadSpec::Blender(spec) => blender::assemble(spec, outputs),
        WorkloadSpec::Train(spec) => train::assemble(spec, outputs),
        WorkloadSpec::Infer(spec) => infer::assemble(spec, outputs),
    }
}
