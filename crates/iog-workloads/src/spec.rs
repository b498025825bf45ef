//! The job file: its `[job]` section, one workload section, parsing and checks.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::blender::BlenderSpec;
use crate::check;
use crate::code::{CODE_FILE_BYTES_MAX, FileRef};
use crate::error::{SpecError, path_string};
use crate::hash::HashSpec;
use crate::infer::InferSpec;
use crate::nbody::NbodySpec;
use crate::noop::NoopSpec;
use crate::process::ProcessSpec;
use crate::render::{self, RenderSpec, Scene, SceneRef};
use crate::resources::ResourcesSpec;
use crate::sim::SimSpec;
use crate::train::{DataFile, ML_SOFTWARE, TrainSpec};
use crate::wasm::{WASM_SOFTWARE, WasmSpec};

/// The names `job.workload` accepts, in the order error messages list them.
pub const WORKLOAD_KINDS: [&str; 10] =
    ["render", "hash", "noop", "sim", "nbody", "wasm", "process", "blender", "train", "infer"];

/// Longest accepted `job.name`, in characters.
pub const JOB_NAME_CHARS_MAX: usize = 64;

/// Largest scene file [`parse_job_file`] reads, in bytes.
pub const SCENE_FILE_BYTES_MAX: u64 = 16 << 20;

/// Shortest accepted `job.task_timeout_ms`: one second.
pub const TASK_TIMEOUT_MS_MIN: u64 = 1_000;
/// Longest accepted `job.task_timeout_ms`: seven days.
pub const TASK_TIMEOUT_MS_MAX: u64 = 7 * 24 * 3_600_000;
/// Largest accepted `job.max_attempts`.
pub const MAX_ATTEMPTS_MAX: u32 = 100;

/// A parsed job file: the `[job]` section and the section of its workload.
///
/// It is self-contained once parsed: a render scene given as a file path has
/// been read and inlined. `serde_json::to_vec` of a spec parses back with
/// [`parse_job_json`] to an equal value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    /// What the job is called and which workload it runs.
    pub job: JobSection,
    /// Parameters of the `render` workload.
    #[serde(default)]
    pub render: Option<RenderSpec>,
    /// Parameters of the `hash` workload.
    #[serde(default)]
    pub hash: Option<HashSpec>,
    /// Parameters of the `noop` workload.
    #[serde(default)]
    pub noop: Option<NoopSpec>,
    /// Parameters of the `sim` workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sim: Option<SimSpec>,
    /// Parameters of the `nbody` workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbody: Option<NbodySpec>,
    /// Parameters of the `wasm` workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wasm: Option<WasmSpec>,
    /// Parameters of the `process` workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcessSpec>,
    /// Parameters of the `blender` workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blender: Option<BlenderSpec>,
    /// Parameters of the `train` workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train: Option<TrainSpec>,
    /// Parameters of the `infer` workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub infer: Option<InferSpec>,
    /// How the job pays its workers, in $IO; a job without it is free (for
    /// development networks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentSpec>,
    /// What each task needs of a worker; without it a task takes one CPU
    /// slot on any worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourcesSpec>,
    /// How results are checked before they are accepted and paid; without
    /// it every result is accepted as it comes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifySpec>,
    /// Where a sealed job's task inputs are: written by the submitter's
    /// client in place of the workload section, which never leaves it (see
    /// [`JobSpec::to_sealed_wire`]). Never written by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<SealedSpec>,
}

/// The `[sealed]` section of a sealed job as the coordinator receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealedSpec {
    /// The blob listing the task inputs' blob ids, 32 bytes each, in task
    /// order; the inputs are sealed, uploaded by the submitter.
    pub manifest: iog_types::BlobId,
    /// Tasks in the job: the manifest lists this many inputs.
    pub n_tasks: u32,
}

/// The `[verify]` section: `policy = "none" | "replicate" | "adaptive" | "spot"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifySpec {
    /// `none`, `replicate`, `adaptive` or `spot`.
    pub policy: String,
    /// `replicate` only: results that must agree (2 to 9, default 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u8>,
    /// Most runs of one task before it fails without an agreed result
    /// (default 5, at most 9).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas_max: Option<u8>,
}

impl VerifySpec {
    /// The policy, with its numbers checked.
    pub fn policy(&self) -> Result<iog_types::Verify, SpecError> {
        use iog_types::{REPLICAS_MAX_DEFAULT, REPLICAS_MIN, Verify};
        let replicas_max = self.replicas_max.unwrap_or(REPLICAS_MAX_DEFAULT);
        let verify = match self.policy.as_str() {
            "none" => {
                if self.replicas.is_some() || self.replicas_max.is_some() {
                    return Err(SpecError::invalid(
                        "verify.policy",
                        "is \"none\", which runs each task once; remove verify.replicas and verify.replicas_max \
                         or choose \"replicate\" or \"adaptive\"",
                    ));
                }
                Verify::None
            }
            "replicate" => Verify::Replicate { replicas: self.replicas.unwrap_or(REPLICAS_MIN), replicas_max },
            "adaptive" => {
                if self.replicas.is_some() {
                    return Err(SpecError::invalid(
                        "verify.replicas",
                        "applies to policy \"replicate\" only; adaptive runs a task again when the worker is not \
                         yet trusted; remove it or set verify.policy = \"replicate\"",
                    ));
                }
                Verify::Adaptive { replicas_max }
            }
            "spot" => {
                if self.replicas.is_some() {
                    return Err(SpecError::invalid(
                        "verify.replicas",
                        "applies to policy \"replicate\" only; spot checks each result by recomputing a sample \
                         of it; remove it or set verify.policy = \"replicate\"",
                    ));
                }
                Verify::Spot { replicas_max }
            }
            other => {
                return Err(SpecError::invalid(
                    "verify.policy",
                    format!("must be \"none\", \"replicate\", \"adaptive\" or \"spot\", got {other:?}"),
                ));
            }
        };
        verify.validate().map_err(|message| {
            let field =
                if message.starts_with("verify.replicas_max") { "verify.replicas_max" } else { "verify.replicas" };
            let reason = message.split_once(' ').map_or(message.as_str(), |(_, rest)| rest).to_owned();
            SpecError::invalid(field, reason)
        })?;
        Ok(verify)
    }
}

/// The `[payment]` section. Amounts are text such as `"10"` or `"0.5 IO"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentSpec {
    /// The wallet that pays, by address; the CLI fills in its own wallet
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wallet: Option<String>,
    /// Held in escrow when the job is accepted; what is not spent returns
    /// when the job ends.
    pub budget: String,
    /// The most paid per device-hour of task run time; each task pays its
    /// worker's asking price, which placement keeps at or below this.
    pub price_io_per_hour: String,
}

/// The `[payment]` section, read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PaymentTerms {
    /// The paying wallet, when the spec names one.
    pub wallet: Option<iog_ledger::Address>,
    /// Held in escrow while the job runs.
    pub budget: iog_ledger::Amount,
    /// Paid per device-hour of task run time.
    pub price_io_per_hour: iog_ledger::Amount,
}

impl PaymentSpec {
    /// Reads the amounts and the address; errors name the field.
    pub fn terms(&self) -> Result<PaymentTerms, SpecError> {
        let amount = |field: &str, text: &str| {
            let amount: iog_ledger::Amount = text.parse().map_err(|err| {
                SpecError::invalid(field, format!("must be an amount such as \"2.5\" or \"2.5 IO\": {err}"))
            })?;
            if amount.is_zero() {
                return Err(SpecError::invalid(field, "must be more than 0 (leave out [payment] for a free job)"));
            }
            Ok(amount)
        };
        let wallet = match &self.wallet {
            Some(text) => Some(text.parse().map_err(|err| {
                SpecError::invalid(
                    "payment.wallet",
                    format!("must be a wallet address (`iog wallet new` prints yours): {err}"),
                )
            })?),
            None => None,
        };
        Ok(PaymentTerms {
            wallet,
            budget: amount("payment.budget", &self.budget)?,
            price_io_per_hour: amount("payment.price_io_per_hour", &self.price_io_per_hour)?,
        })
    }
}

/// The `[job]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSection {
    /// A name for people, 1 to 64 characters.
    pub name: String,
    /// Which workload runs: `render`, `hash`, `noop`, `sim`, `nbody`,
    /// `wasm`, `process`, `blender`, `train` or `infer`.
    pub workload: String,
    /// How many times a task may be tried before the job fails (1 to 100);
    /// `None` leaves the choice to the coordinator.
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// How long one run of a task may take before its lease lapses and the
    /// task is tried elsewhere (1 s to 7 days); `None`: no bound.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_timeout_ms: Option<u64>,
    /// Seal the job's inputs and results end to end: `iog job submit`
    /// splits and encrypts the job on this machine, and only the workers
    /// that run a task can read it (see docs/THREAT_MODEL.md).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sealed: bool,
}

/// The parameters of the workload a job runs, taken from its section.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkloadSpec {
    /// A path-traced image, split into tiles.
    Render(RenderSpec),
    /// A proof-of-work nonce search, split into nonce ranges.
    Hash(HashSpec),
    /// Empty tasks, for measuring the scheduling machinery.
    Noop(NoopSpec),
    /// Monte Carlo simulation, split into tasks of independent samples.
    Sim(SimSpec),
    /// A gravitational N-body simulation, split into time windows that
    /// run one after another, each from the state the last one ended with.
    Nbody(NbodySpec),
    /// The submitter's own WebAssembly module, run once per task.
    Wasm(WasmSpec),
    /// The submitter's own command, run once per task in a sandbox.
    Process(ProcessSpec),
    /// Frames of the submitter's Blender scene, one per task.
    Blender(BlenderSpec),
    /// A model trained across workers in rounds (DiLoCo), each round's
    /// tasks made from the round before's results.
    Train(TrainSpec),
    /// A trained model run over a data set, one shard per task.
    Infer(InferSpec),
}

impl WorkloadSpec {
    /// The workload's name as written in `job.workload`.
    pub fn kind(&self) -> &'static str {
        match self {
            WorkloadSpec::Render(_) => "render",
            WorkloadSpec::Hash(_) => "hash",
            WorkloadSpec::Noop(_) => "noop",
            WorkloadSpec::Sim(_) => "sim",
            WorkloadSpec::Nbody(_) => "nbody",
            WorkloadSpec::Wasm(_) => "wasm",
            WorkloadSpec::Process(_) => "process",
            WorkloadSpec::Blender(_) => "blender",
            WorkloadSpec::Train(_) => "train",
            WorkloadSpec::Infer(_) => "infer",
        }
    }

    /// Checks every field's range; errors name the field by its TOML path.
    pub fn validate(&self) -> Result<(), SpecError> {
        match self {
            WorkloadSpec::Render(spec) => spec.validate(),
            WorkloadSpec::Hash(spec) => spec.validate(),
            WorkloadSpec::Noop(spec) => spec.validate(),
            WorkloadSpec::Sim(spec) => spec.validate(),
            WorkloadSpec::Nbody(spec) => spec.validate(),
            WorkloadSpec::Wasm(spec) => spec.validate(),
            WorkloadSpec::Process(spec) => spec.validate(),
            WorkloadSpec::Blender(spec) => spec.validate(),
            WorkloadSpec::Train(spec) => spec.validate(),
            WorkloadSpec::Infer(spec) => spec.validate(),
        }
    }
}

impl JobSpec {
    /// The workload section selected by `job.workload`. Fails when the name is
    /// unknown or its section is missing; field ranges are checked by
    /// [`validate`](Self::validate).
    pub fn workload(&self) -> Result<WorkloadSpec, SpecError> {
        let workload = self.job.workload.as_str();
        let selected = match workload {
            "render" => self.render.clone().map(WorkloadSpec::Render),
            "hash" => self.hash.clone().map(WorkloadSpec::Hash),
            "noop" => self.noop.clone().map(WorkloadSpec::Noop),
            "sim" => self.sim.clone().map(WorkloadSpec::Sim),
            "nbody" => self.nbody.clone().map(WorkloadSpec::Nbody),
            "wasm" => self.wasm.clone().map(WorkloadSpec::Wasm),
            "process" => self.process.clone().map(WorkloadSpec::Process),
            "blender" => self.blender.clone().map(WorkloadSpec::Blender),
            "train" => self.train.clone().map(WorkloadSpec::Train),
            "infer" => self.infer.clone().map(WorkloadSpec::Infer),
            other => {
                return Err(SpecError::invalid(
                    "job.workload",
                    format!("must be one of {}; got {other:?}", WORKLOAD_KINDS.join(", ")),
                ));
            }
        };
        selected.ok_or_else(|| {
            SpecError::section(
                workload,
                format!(
                    "job.workload is {workload:?} but the [{workload}] section is missing; \
                     add a [{workload}] section with the workload's parameters"
                ),
            )
        })
    }

    /// How the job's results are checked (the `[verify]` section).
    pub fn verify(&self) -> Result<iog_types::Verify, SpecError> {
        self.verify.as_ref().map_or(Ok(iog_types::Verify::None), VerifySpec::policy)
    }

    /// What each task needs of a worker: the `[resources]` section (one CPU
    /// slot when absent), its price capped at the payment's price per
    /// device-hour — at zero for a free job, which only free workers take.
    /// A wasm, process or blender job also needs workers that run it (and
    /// offer the programs it requires) and lend each task the memory it
    /// asks for; a process job's GPUs are its devices.
    pub fn requirements(&self) -> Result<iog_sched::Requirements, SpecError> {
        let price_cap = match &self.payment {
            Some(payment) => payment.terms()?.price_io_per_hour,
            None => iog_ledger::Amount::ZERO,
        };
        let mut requirements = self.resources.clone().unwrap_or_default().requirements(price_cap)?;
        if let (Some(wasm), "wasm") = (&self.wasm, self.job.workload.as_str()) {
            if requirements.kind != Some(iog_types::DeviceKind::Cpu) {
                return Err(SpecError::invalid(
                    "resources.device",
                    "must be \"cpu\" (or left out) for a wasm job: modules run on the worker's CPU",
                ));
            }
            requirements.software.push(WASM_SOFTWARE.to_owned());
            requirements.memory_bytes_min = requirements.memory_bytes_min.max(wasm.limits().memory_bytes);
        }
        if let (Some(process), "process") = (&self.process, self.job.workload.as_str()) {
            let resources = self.resources.clone().unwrap_or_default();
            let gpus = process.gpus();
            if gpus == 0 {
                if requirements.kind != Some(iog_types::DeviceKind::Cpu) {
                    return Err(SpecError::invalid(
                        "resources.device",
                        "must be \"cpu\" (or left out) for a process job without process.gpus; to run on GPUs, \
                         set process.gpus",
                    ));
                }
                requirements.memory_bytes_min = requirements.memory_bytes_min.max(process.limits().memory_bytes);
            } else {
                if matches!(resources.device.as_deref(), Some(device) if device != "gpu") {
                    return Err(SpecError::invalid(
                        "resources.device",
                        format!("must be \"gpu\" (or left out): process.gpus asks for {gpus} GPUs per task"),
                    ));
                }
                if resources.count.is_some_and(|count| count != gpus) {
                    return Err(SpecError::invalid(
                        "resources.count",
                        format!("must equal process.gpus ({gpus}) or be left out: each task uses that many GPUs"),
                    ));
                }
                requirements.kind = Some(iog_types::DeviceKind::Gpu);
                requirements.count = gpus;
            }
            requirements.software.extend(process.software());
        }
        if let (Some(blender), "blender") = (&self.blender, self.job.workload.as_str()) {
            if requirements.kind != Some(iog_types::DeviceKind::Cpu) {
                return Err(SpecError::invalid(
                    "resources.device",
                    "must be \"cpu\" (or left out) for a blender job: frames render with Cycles on the CPU",
                ));
            }
            requirements.software.extend(blender.software());
            requirements.memory_bytes_min = requirements.memory_bytes_min.max(blender.limits().memory_bytes);
        }
        let ml = match self.job.workload.as_str() {
            "train" if self.train.is_some() => Some("train"),
            "infer" if self.infer.is_some() => Some("infer"),
            _ => None,
        };
        if let Some(workload) = ml {
            if requirements.kind != Some(iog_types::DeviceKind::Cpu) {
                return Err(SpecError::invalid(
                    "resources.device",
                    format!("must be \"cpu\" (or left out) for a {workload} job: models run on the CPU backend"),
                ));
            }
            requirements.software.push(ML_SOFTWARE.to_owned());
            // A round's sums round differently on another CPU: over long
            // rounds, replicas on two models would not agree
            // (`TRAIN_RELATIVE_ERROR`).
            if workload == "train" {
                requirements.replicas_same_model = true;
            }
        }
        Ok(requirements)
    }

    /// The blobs the job's tasks read besides their own inputs (a wasm
    /// job's module and files, a process job's files, a blender job's
    /// scene); empty for the built-in workloads. Each must
    /// have been uploaded by the submitter before the job is submitted.
    pub fn assets(&self) -> Result<Vec<iog_types::BlobId>, SpecError> {
        match (&self.wasm, self.job.workload.as_str()) {
            (Some(wasm), "wasm") => wasm.assets(),
            _ => match (&self.process, &self.blender, self.job.workload.as_str()) {
                (Some(process), _, "process") => process.assets(),
                (_, Some(blender), "blender") => blender.assets(),
                _ => match (&self.infer, self.job.workload.as_str()) {
                    (Some(infer), "infer") => infer.assets(),
                    _ => Ok(Vec::new()),
                },
            },
        }
    }

    /// Puts the bytes of the uploaded files that planning and assembly
    /// read in place of their names: a train job's data, which the
    /// coordinator shards into the tasks' inputs. `read` gives a file by
    /// its blob (one of [`planning_files`](Self::planning_files)); every other workload's
    /// files are read by its workers, and this leaves them alone. The
    /// spec to store is the one before: it names the files, small.
    pub fn resolve_files(&mut self, read: &dyn Fn(&iog_types::BlobId) -> Option<Vec<u8>>) -> Result<(), SpecError> {
        match (&mut self.train, self.job.workload.as_str()) {
            (Some(train), "train") => train.resolve_files(read),
            _ => Ok(()),
        }
    }

    /// The uploaded files the coordinator itself reads to plan and
    /// assemble the job (a train job's data, which it cuts into shards), each
    /// once. Like [`assets`](Self::assets) they must have been uploaded by
    /// the submitter; unlike them, workers may not read them: a worker
    /// sees only its own shard, in its task's input.
    pub fn planning_files(&self) -> Vec<iog_types::BlobId> {
        match (&self.train, self.job.workload.as_str()) {
            (Some(train), "train") => train.assets(),
            _ => Vec::new(),
        }
    }

    /// Whether [`resolve_files`](Self::resolve_files) has files to read.
    pub fn reads_files_to_plan(&self) -> bool {
        !self.planning_files().is_empty()
    }

    /// The most one task may pay per hour for all its devices: the price cap
    /// per device-hour times the devices each task uses. What `iog ledger
    /// verify` holds every committed task's price against.
    pub fn price_io_per_task_hour_max(&self) -> Result<iog_ledger::Amount, SpecError> {
        let requirements = self.requirements()?;
        let cap = requirements.price_io_per_device_hour_max.unwrap_or(iog_ledger::Amount::MAX);
        Ok(cap.checked_mul_div(u64::from(requirements.count), 1).unwrap_or(iog_ledger::Amount::MAX))
    }

    /// Checks every field's range; errors name the field by its full TOML path.
    pub fn validate(&self) -> Result<(), SpecError> {
        let name_chars = self.job.name.chars().count();
        if !(1..=JOB_NAME_CHARS_MAX).contains(&name_chars) {
            return Err(SpecError::invalid(
                "job.name",
                format!("must be 1 to {JOB_NAME_CHARS_MAX} characters long, got {name_chars}"),
            ));
        }
        if self.job.name.chars().any(char::is_control) {
            return Err(SpecError::invalid("job.name", "must not contain control characters such as newlines"));
        }
        if let Some(max_attempts) = self.job.max_attempts {
            check::between("job.max_attempts", max_attempts, 1, MAX_ATTEMPTS_MAX)?;
        }
        if let Some(timeout_ms) = self.job.task_timeout_ms {
            check::between("job.task_timeout_ms", timeout_ms, TASK_TIMEOUT_MS_MIN, TASK_TIMEOUT_MS_MAX)?;
        }
        if let Some(payment) = &self.payment {
            payment.terms()?;
        }
        self.requirements()?;
        let verify = self.verify()?;
        if verify != iog_types::Verify::None
            && self.resources.as_ref().is_some_and(|resources| resources.gang_latency_ms_max.is_some())
        {
            return Err(SpecError::invalid(
                "verify.policy",
                "a gang job (resources.gang_latency_ms_max) cannot verify by replicas yet; set verify.policy = \"none\"",
            ));
        }
        let code_wall_ms = match self.job.workload.as_str() {
            "wasm" => self.wasm.as_ref().map(|wasm| wasm.limits().wall_ms),
            "process" => self.process.as_ref().map(|process| process.limits().wall_ms),
            "blender" => self.blender.as_ref().map(|blender| blender.limits().wall_ms),
            _ => None,
        };
        if let Some(wall_ms) = code_wall_ms {
            let workload = self.job.workload.as_str();
            if matches!(verify, iog_types::Verify::Spot { .. }) {
                return Err(SpecError::invalid(
                    "verify.policy",
                    format!(
                        "is \"spot\", but a {workload} task's output cannot be recomputed in part; choose \
                         \"replicate\" (replicas must agree byte for byte) or \"adaptive\""
                    ),
                ));
            }
            if self.job.sealed {
                return Err(SpecError::invalid(
                    "job.sealed",
                    format!(
                        "is true, but {workload} jobs cannot be sealed yet (their files travel as plain blobs); \
                         set job.sealed = false"
                    ),
                ));
            }
            if let Some(task_timeout_ms) = self.job.task_timeout_ms
                && wall_ms > task_timeout_ms
            {
                return Err(SpecError::invalid(
                    format!("{workload}.timeout_ms"),
                    format!(
                        "is {wall_ms} ms, longer than job.task_timeout_ms ({task_timeout_ms} ms), after which the \
                         task is taken back anyway; lower it or raise job.task_timeout_ms"
                    ),
                ));
            }
        }
        if self.job.sealed && matches!(verify, iog_types::Verify::Spot { .. }) {
            return Err(SpecError::invalid(
                "verify.policy",
                "is \"spot\", but the coordinator cannot recompute a sample of a sealed job it cannot read; \
                 choose \"replicate\" or \"adaptive\", or set job.sealed = false",
            ));
        }
        if self.job.workload == "train" && matches!(verify, iog_types::Verify::Spot { .. }) {
            return Err(SpecError::invalid(
                "verify.policy",
                "is \"spot\", but a training round cannot be checked without training it again; choose \
                 \"replicate\" (replicas must agree within the stated tolerance) or \"adaptive\"",
            ));
        }
        if self.job.workload == "infer" && matches!(verify, iog_types::Verify::Spot { .. }) {
            return Err(SpecError::invalid(
                "verify.policy",
                "is \"spot\", but the coordinator runs no model to recompute a sample of an infer task; choose \
                 \"replicate\" (replicas must agree within the stated tolerance) or \"adaptive\"",
            ));
        }
        if self.job.sealed && self.job.workload == "infer" {
            return Err(SpecError::invalid(
                "job.sealed",
                "is true, but infer jobs cannot be sealed yet (their weights and data travel as plain blobs); set \
                 job.sealed = false",
            ));
        }
        if self.job.sealed && self.job.workload == "train" {
            return Err(SpecError::invalid(
                "job.sealed",
                "is true, but a train job cannot be sealed: the coordinator makes each round's weights from the \
                 round before's results, which it cannot read in a sealed job; set job.sealed = false",
            ));
        }
        if self.job.sealed && self.job.workload == "nbody" {
            return Err(SpecError::invalid(
                "job.sealed",
                "is true, but an nbody job cannot be sealed: the coordinator makes each window's input from the \
                 previous window's output, which it cannot read in a sealed job; set job.sealed = false",
            ));
        }
        let present = [
            ("render", self.render.is_some()),
            ("hash", self.hash.is_some()),
            ("noop", self.noop.is_some()),
            ("sim", self.sim.is_some()),
            ("nbody", self.nbody.is_some()),
            ("wasm", self.wasm.is_some()),
            ("process", self.process.is_some()),
            ("blender", self.blender.is_some()),
            ("train", self.train.is_some()),
            ("infer", self.infer.is_some()),
        ];
        if let Some(sealed) = &self.sealed {
            return self.validate_sealed_wire(sealed, &present);
        }
        let workload = self.workload()?;
        for (section, is_present) in present {
            if is_present && section != workload.kind() {
                return Err(SpecError::section(
                    section,
                    format!(
                        "[{section}] section is present but job.workload is {:?}; \
                         remove [{section}] or set job.workload = {section:?}",
                        workload.kind()
                    ),
                ));
            }
        }
        workload.validate()
    }
}

impl JobSpec {
    /// Whether this is a sealed job as the coordinator sees it: a
    /// `[sealed]` section naming its inputs, and no workload section.
    pub fn is_sealed_wire(&self) -> bool {
        self.sealed.is_some()
    }

    /// The spec the coordinator receives for this sealed job: the same
    /// `[job]`, `[payment]`, `[resources]` and `[verify]`, its inputs named
    /// by `manifest`, and no workload section (the scene, the data and the
    /// parameters stay with the submitter).
    pub fn to_sealed_wire(&self, manifest: iog_types::BlobId, n_tasks: u32) -> JobSpec {
        JobSpec {
            render: None,
            hash: None,
            noop: None,
            sim: None,
            nbody: None,
            wasm: None,
            process: None,
            blender: None,
            train: None,
            infer: None,
            sealed: Some(SealedSpec { manifest, n_tasks }),
            ..self.clone()
        }
    }

    fn validate_sealed_wire(&self, sealed: &SealedSpec, present: &[(&str, bool)]) -> Result<(), SpecError> {
        if !self.job.sealed {
            return Err(SpecError::section(
                "sealed",
                "[sealed] section is present but job.sealed is false; it names the inputs of a sealed job, which \
                 `iog job submit` writes: remove it"
                    .to_owned(),
            ));
        }
        if !WORKLOAD_KINDS.contains(&self.job.workload.as_str()) {
            return Err(SpecError::invalid(
                "job.workload",
                format!("must be one of {}; got {:?}", WORKLOAD_KINDS.join(", "), self.job.workload),
            ));
        }
        if let Some((section, _)) = present.iter().find(|(_, is_present)| *is_present) {
            return Err(SpecError::section(
                section,
                format!(
                    "[{section}] section is present in a sealed job: its parameters must stay with the submitter; \
                     remove it (`iog job submit` seals the job on your machine and sends no workload section)"
                ),
            ));
        }
        check::between("sealed.n_tasks", u64::from(sealed.n_tasks), 1, crate::MAX_TASKS)
    }
}

/// A file a job file names (a wasm job's module, a process job's script,
/// data, a Blender scene), read so that it
/// can be uploaded before the job is submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFile {
    /// The path as the job file writes it.
    pub path: String,
    /// The file's content address.
    pub blob: iog_types::BlobId,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// Parses the TOML text of a job file and validates it.
///
/// `base_dir` is the job file's folder: a render scene given as a path is read
/// relative to it and inlined, so the returned spec is self-contained. The
/// files of a wasm, process, blender, infer or train job are read too and
/// named by content address; use [`load_job_file`] to keep their bytes for
/// upload.
pub fn parse_job_file(text: &str, base_dir: &Path) -> Result<JobSpec, SpecError> {
    load_job_file(text, base_dir).map(|(spec, _)| spec)
}

/// Like [`parse_job_file`], and also returns the files the spec now names
/// by content address (a wasm job's module and data, an infer job's
/// weights, a train job's data), each once, which the submitter uploads
/// before submitting. An infer job's model and vocabulary are read from its
/// weights' metadata where the job file leaves them out, and its weights
/// and data are checked against the model.
pub fn load_job_file(text: &str, base_dir: &Path) -> Result<(JobSpec, Vec<JobFile>), SpecError> {
    let mut spec = parse_job_file_with(text, &mut |scene_path: &str| {
        let full_path = base_dir.join(scene_path);
        let mut scene_text = String::new();
        std::fs::File::open(&full_path)
            .and_then(|file| file.take(SCENE_FILE_BYTES_MAX + 1).read_to_string(&mut scene_text))
            .map_err(|err| format!("{}: {err}", full_path.display()))?;
        if scene_text.len() as u64 > SCENE_FILE_BYTES_MAX {
            return Err(format!("{} is larger than {SCENE_FILE_BYTES_MAX} bytes", full_path.display()));
        }
        Ok(scene_text)
    })?;
    let mut files: Vec<JobFile> = Vec::new();
    let spec_is_infer = spec.job.workload == "infer";
    let refs: Vec<(String, &mut FileRef)> = match spec.job.workload.as_str() {
        "wasm" => spec.wasm.iter_mut().flat_map(|wasm| wasm.file_refs_mut()).collect(),
        "process" => spec.process.iter_mut().flat_map(|process| process.file_refs_mut()).collect(),
        "blender" => spec.blender.iter_mut().flat_map(|blender| blender.file_refs_mut()).collect(),
        "infer" => spec.infer.iter_mut().flat_map(|infer| infer.file_refs_mut()).collect(),
        _ => Vec::new(),
    };
    if let (Some(train), "train") = (&mut spec.train, spec.job.workload.as_str()) {
        for (field, file) in train.data.files_mut() {
            let DataFile::Path(path) = file else { continue };
            let (name, blob) = read_job_file(base_dir, field, path, &mut files)?;
            *file = DataFile::Blob { name, blob };
        }
    }
    let mut read_by_field: BTreeMap<String, std::sync::Arc<Vec<u8>>> = BTreeMap::new();
    {
        for (field, file) in refs {
            let FileRef::Path(path) = file else { continue };
            let (name, blob) = read_job_file(base_dir, &field, path, &mut files)?;
            if spec_is_infer {
                let bytes = &files.iter().find(|known| known.blob == blob).expect("just read").bytes;
                read_by_field.insert(field.clone(), std::sync::Arc::new(bytes.clone()));
            }
            *file = FileRef::Blob { name, blob };
        }
    }
    if let (Some(infer), "infer") = (&mut spec.infer, spec.job.workload.as_str()) {
        crate::infer::prepare(infer, &|field| read_by_field.get(field).cloned())?;
    }
    spec.validate()?;
    Ok((spec, files))
}

/// Reads the file a job names at `path` (relative to `base_dir`) for
/// upload, once per content, and gives the name a task sees and its blob.
fn read_job_file(
    base_dir: &Path,
    field: &str,
    path: &str,
    files: &mut Vec<JobFile>,
) -> Result<(String, iog_types::BlobId), SpecError> {
    let bytes = read_limited(&base_dir.join(path), CODE_FILE_BYTES_MAX).map_err(|reason| {
        SpecError::invalid(
            field,
            format!("names {path:?}, which cannot be read: {reason}; the path is relative to the job file's folder"),
        )
    })?;
    let blob = iog_types::BlobId::of(&bytes);
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path).to_owned();
    if !files.iter().any(|known| known.blob == blob) {
        files.push(JobFile { path: path.to_owned(), blob, bytes });
    }
    Ok((name, blob))
}

/// Reads a whole file of at most `max_bytes`.
pub(crate) fn read_limited(path: &Path, max_bytes: u64) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|file| file.take(max_bytes + 1).read_to_end(&mut bytes))
        .map_err(|err| format!("{}: {err}", path.display()))?;
    if bytes.len() as u64 > max_bytes {
        return Err(format!("{} is larger than {max_bytes} bytes", path.display()));
    }
    Ok(bytes)
}

/// Like [`parse_job_file`], but scene files are read by `read_scene`, which is
/// given the path as written in the job file and returns the file's text or a
/// reason it cannot. Lets callers parse jobs without touching the file system.
pub fn parse_job_file_with(
    text: &str,
    read_scene: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<JobSpec, SpecError> {
    let mut spec: JobSpec = from_toml(text)?;
    if let Some(render) = &mut spec.render {
        inline_scene_file(render, read_scene)?;
    }
    spec.validate()?;
    Ok(spec)
}

/// Replaces a scene given as a path by the scene read from that file.
fn inline_scene_file(
    render: &mut RenderSpec,
    read_scene: &mut dyn FnMut(&str) -> Result<String, String>,
) -> Result<(), SpecError> {
    let SceneRef::Path(scene_path) = &render.scene else {
        return Ok(());
    };
    let scene_text = read_scene(scene_path).map_err(|reason| SpecError::scene_file(scene_path, &reason))?;
    // Errors keep the scene file's own paths (`objects[3].radius`), which is
    // where the user will look for them.
    let scene: Scene = from_toml(&scene_text)
        .and_then(|scene| render::validate_scene(&scene, "").map(|()| scene))
        .map_err(|err| SpecError::in_scene_file(scene_path, err))?;
    render.scene = SceneRef::Inline(scene);
    Ok(())
}

/// Parses a self-contained spec sent as JSON (as the coordinator's API
/// receives it) and validates it. Scenes must be inline.
pub fn parse_job_json(bytes: &[u8]) -> Result<JobSpec, SpecError> {
    let spec: JobSpec = from_json(bytes)?;
    spec.validate()?;
    Ok(spec)
}

/// Deserializes TOML text, reporting the path of any mistake.
pub(crate) fn from_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, SpecError> {
    let deserializer = toml::Deserializer::parse(text).map_err(|err| {
        let location = err.span().map(|span| line_column(text, span.start));
        SpecError::syntax("TOML", location, err.message())
    })?;
    serde_path_to_error::deserialize(deserializer)
        .map_err(|err| SpecError::from_serde(&path_string(err.path()), err.inner().message()))
}

/// Deserializes JSON bytes, reporting the path of any mistake.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, SpecError> {
    let json_syntax = |err: &serde_json::Error| {
        let location = (err.line() > 0).then(|| (err.line(), err.column()));
        SpecError::syntax("JSON", location, &without_position(err))
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let inner = err.inner();
        if inner.is_data() {
            SpecError::from_serde(&path_string(err.path()), &without_position(inner))
        } else {
            json_syntax(inner)
        }
    })?;
    deserializer.end().map_err(|err| json_syntax(&err))?;
    Ok(value)
}

/// serde_json appends " at line L column C" to every message; the position is
/// reported separately, or not at all for data errors which carry a path.
fn without_position(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rsplit_once(" at line ") {
        Some((message, _)) => message.to_owned(),
        None => text,
    }
}

/// The 1-based line and column (in characters) of a byte offset.
fn line_column(text: &str, byte_offset: usize) -> (usize, usize) {
    let before = text.get(..byte_offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}
