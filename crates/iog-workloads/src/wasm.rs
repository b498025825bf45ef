//! The `wasm` workload: the submitter's own WebAssembly (WASI preview 1)
//! module, run once per task in a worker's sandbox.
//!
//! The job file names the module and its data files by path; `iog job
//! submit` reads them, uploads each as a blob and sends the spec with the
//! paths replaced by [`FileRef::Blob`] (name and content address). Task
//! inputs name those blobs rather than carry them, so a 5 MiB module run
//! as 1000 tasks is stored once; a worker fetches (and caches) them while
//! it holds a lease on one of the job's tasks.
//!
//! What a module sees is the contract of `examples/wasm/README.md`: argv,
//! `IOG_TASK_INDEX` and `IOG_N_TASKS`, its files read-only at `/in`, an
//! empty `/out`, no network, a clock that stands still and random bytes
//! from a seed of the task's own. Its output is the [`Bundle`](crate::Bundle) of `/out`
//! and its standard output; being deterministic, replicas compare by digest.

use std::collections::BTreeMap;

use iog_types::BlobId;
use serde::{Deserialize, Serialize};

use crate::code::{CodeFields, assemble_bundles};
use crate::task::MAX_TASKS;
use crate::{Artifact, AssembleError, SpecError, check};

/// The software name a worker advertises when it runs wasm tasks, and a
/// wasm job requires.
pub const WASM_SOFTWARE: &str = "wasm";

/// Most tasks a `wasm.tasks` count may ask for.
pub const WASM_TASKS_MAX: u64 = MAX_TASKS;
pub use crate::code::{
    CODE_ARGS_MAX as WASM_ARGS_MAX, CODE_ENV_MAX as WASM_ENV_MAX, CODE_FILE_BYTES_MAX as WASM_FILE_BYTES_MAX,
    CODE_FILE_NAME_BYTES_MAX as WASM_FILE_NAME_BYTES_MAX, CODE_FILES_MAX as WASM_FILES_MAX,
    CODE_TEXT_BYTES_MAX as WASM_TEXT_BYTES_MAX, FileRef,
};

/// Default instruction budget of one task: about ten seconds of work.
pub const WASM_FUEL_DEFAULT: u64 = 10_000_000_000;
/// Largest instruction budget a job may ask for (hours of work).
pub const WASM_FUEL_MAX: u64 = 100_000_000_000_000;
/// Default linear-memory cap of one task, in MiB: enough for most modules,
/// and within what a small worker lends. A job that needs more asks for it
/// and is placed on workers that lend at least that much.
pub const WASM_MEMORY_MIB_DEFAULT: u64 = 64;
/// Largest memory cap: all a 32-bit module can address.
pub const WASM_MEMORY_MIB_MAX: u64 = 4_096;
/// Default wall-clock limit of one task: ten minutes.
pub const WASM_TIMEOUT_MS_DEFAULT: u64 = 600_000;
/// Longest wall-clock limit: one day.
pub const WASM_TIMEOUT_MS_MAX: u64 = 24 * 3_600_000;
/// Default cap on what one task writes, in MiB.
pub const WASM_OUTPUT_MIB_DEFAULT: u64 = 64;
/// Largest cap on what one task writes, in MiB.
pub const WASM_OUTPUT_MIB_MAX: u64 = 1_024;

/// The bounds of one run. A job asks for its own; the worker's owner sets
/// the most any job may have, and a worker refuses a task over its caps
/// ([`WasmLimits::over`]) rather than run it under other limits, which
/// could change its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmLimits {
    /// Instructions (roughly: wasmtime's fuel units) a run may execute.
    pub fuel: u64,
    /// Bytes of linear memory a module may have.
    pub memory_bytes: u64,
    /// Milliseconds a run may take, compile time excluded.
    pub wall_ms: u64,
    /// Bytes a run may write: its files in `/out` and its standard output
    /// together (standard error is kept only in part, for errors).
    pub output_bytes: u64,
}

impl Default for WasmLimits {
    /// 10¹⁰ instructions, 64 MiB of memory, ten minutes, 64 MiB of output.
    fn default() -> WasmLimits {
        WasmLimits {
            fuel: WASM_FUEL_DEFAULT,
            memory_bytes: WASM_MEMORY_MIB_DEFAULT << 20,
            wall_ms: WASM_TIMEOUT_MS_DEFAULT,
            output_bytes: WASM_OUTPUT_MIB_DEFAULT << 20,
        }
    }
}

impl WasmLimits {
    /// These limits, none above `cap`'s.
    pub fn within(&self, cap: &WasmLimits) -> WasmLimits {
        WasmLimits {
            fuel: self.fuel.min(cap.fuel),
            memory_bytes: self.memory_bytes.min(cap.memory_bytes),
            wall_ms: self.wall_ms.min(cap.wall_ms),
            output_bytes: self.output_bytes.min(cap.output_bytes),
        }
    }

    /// The first of these limits that is above `cap`'s, as a sentence
    /// naming both; `None` when all fit.
    pub fn over(&self, cap: &WasmLimits) -> Option<String> {
        let checks = [
            ("wasm.fuel", self.fuel, cap.fuel, 1),
            ("wasm.memory_mib", self.memory_bytes, cap.memory_bytes, 1 << 20),
            ("wasm.timeout_ms", self.wall_ms, cap.wall_ms, 1),
            ("wasm.output_mib", self.output_bytes, cap.output_bytes, 1 << 20),
        ];
        checks.into_iter().find(|(_, asked, most, _)| asked > most).map(|(field, asked, most, unit)| {
            format!(
                "the job asks for {field} = {} but this worker's owner allows at most {}",
                asked / unit,
                most / unit
            )
        })
    }
}

/// Parameters of the `wasm` workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmSpec {
    /// The module (a `.wasm` file built for `wasm32-wasip1`).
    pub module: FileRef,
    /// Arguments after the module's name in argv.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Environment variables (names must not start with `IOG_`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// How many tasks, when they take no file of their own (1 to 1000000).
    /// With `inputs`, leave it out: there is one task per input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tasks: Option<u64>,
    /// One task per file: task `i` sees `inputs[i]` at `/in/<its name>`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub inputs: Vec<FileRef>,
    /// Files every task sees at `/in` (parameters, a lookup table).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
    /// Instructions each task may execute (default 10¹⁰, at most 10¹⁴).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fuel: Option<u64>,
    /// Linear memory each task may have, in MiB (default 64, at most 4096);
    /// the job is placed only on workers lending at least this much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// Wall-clock limit of each task in milliseconds (default 600000, at
    /// most one day; within `job.task_timeout_ms` when that is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Most each task may write to `/out` and standard output, in MiB
    /// (default 64, at most 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_mib: Option<u64>,
}

impl WasmSpec {
    /// The limits every task of the job runs under.
    pub fn limits(&self) -> WasmLimits {
        WasmLimits {
            fuel: self.fuel.unwrap_or(WASM_FUEL_DEFAULT),
            memory_bytes: self.memory_mib.unwrap_or(WASM_MEMORY_MIB_DEFAULT) << 20,
            wall_ms: self.timeout_ms.unwrap_or(WASM_TIMEOUT_MS_DEFAULT),
            output_bytes: self.output_mib.unwrap_or(WASM_OUTPUT_MIB_DEFAULT) << 20,
        }
    }

    /// How many tasks the job splits into.
    pub fn n_tasks(&self) -> u64 {
        self.fields().n_tasks()
    }

    fn fields(&self) -> CodeFields<'_> {
        CodeFields {
            section: "wasm",
            args: &self.args,
            env: &self.env,
            tasks: self.tasks,
            inputs: &self.inputs,
            files: &self.files,
        }
    }

    /// Every file the spec names, module first, with the field it is in.
    pub fn file_refs(&self) -> impl Iterator<Item = (String, &FileRef)> {
        std::iter::once(("wasm.module".to_owned(), &self.module))
            .chain(self.inputs.iter().enumerate().map(|(i, file)| (format!("wasm.inputs[{i}]"), file)))
            .chain(self.files.iter().enumerate().map(|(i, file)| (format!("wasm.files[{i}]"), file)))
    }

    /// Mutable access to every file the spec names, with its field.
    pub(crate) fn file_refs_mut(&mut self) -> impl Iterator<Item = (String, &mut FileRef)> {
        std::iter::once(("wasm.module".to_owned(), &mut self.module))
            .chain(self.inputs.iter_mut().enumerate().map(|(i, file)| (format!("wasm.inputs[{i}]"), file)))
            .chain(self.files.iter_mut().enumerate().map(|(i, file)| (format!("wasm.files[{i}]"), file)))
    }

    /// The blobs the job's tasks read besides their inputs: the module and
    /// every file, each once. The coordinator lets a worker read them only
    /// while it holds a lease on one of the job's tasks.
    pub fn assets(&self) -> Result<Vec<BlobId>, SpecError> {
        crate::code::assets(self.file_refs())
    }

    /// Checks every field. Paths (not yet uploaded) pass: the coordinator
    /// refuses them when it plans the job.
    pub fn validate(&self) -> Result<(), SpecError> {
        self.fields().validate(&[("wasm.module".to_owned(), &self.module)])?;
        check::between("wasm.fuel", self.fuel.unwrap_or(WASM_FUEL_DEFAULT), 1, WASM_FUEL_MAX)?;
        check::between("wasm.memory_mib", self.memory_mib.unwrap_or(WASM_MEMORY_MIB_DEFAULT), 1, WASM_MEMORY_MIB_MAX)?;
        check::between("wasm.timeout_ms", self.timeout_ms.unwrap_or(WASM_TIMEOUT_MS_DEFAULT), 1, WASM_TIMEOUT_MS_MAX)?;
        check::between("wasm.output_mib", self.output_mib.unwrap_or(WASM_OUTPUT_MIB_DEFAULT), 1, WASM_OUTPUT_MIB_MAX)
    }
}

/// The input of one wasm task: everything a worker needs, with files named
/// by blob. Public so the worker can run it; built only by [`plan`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WasmTaskInput {
    /// The module's name (argv\[0\]) and blob.
    pub module_name: String,
    /// The module's content address.
    pub module: BlobId,
    /// argv after the module's name.
    pub args: Vec<String>,
    /// The job's environment, by name.
    pub env: Vec<(String, String)>,
    /// The files at `/in`: the job's shared files, then the task's own.
    pub files: Vec<(String, BlobId)>,
    /// This task's index, from 0.
    pub task_idx: u32,
    /// Tasks in the job.
    pub n_tasks: u32,
    /// What the run may use.
    pub limits: WasmLimits,
}

impl WasmTaskInput {
    /// The seed of the task's random bytes: the same on every worker.
    pub fn seed(&self) -> [u8; 32] {
        task_seed(&self.module, self.task_idx)
    }
}

/// The seed of a task's random bytes, from its module and index alone, so
/// `iog wasm run` on one's own machine draws what a worker draws.
pub fn task_seed(module: &BlobId, task_idx: u32) -> [u8; 32] {
    *blake3::Hasher::new()
        .update(b"iog wasm task seed")
        .update(&module.0)
        .update(&task_idx.to_le_bytes())
        .finalize()
        .as_bytes()
}

pub(crate) fn plan(spec: &WasmSpec) -> Result<Vec<WasmTaskInput>, SpecError> {
    spec.validate()?;
    let (module_name, module) = spec.module.resolved("wasm.module")?;
    let files = spec.fields().task_files()?;
    let n_tasks = spec.n_tasks() as u32;
    let env: Vec<(String, String)> = spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(files
        .into_iter()
        .zip(0..n_tasks)
        .map(|(files, task_idx)| WasmTaskInput {
            module_name: module_name.to_owned(),
            module,
            args: spec.args.clone(),
            env: env.clone(),
            files,
            task_idx,
            n_tasks,
            limits: spec.limits(),
        })
        .collect())
}

/// Each task's files and standard output as artifacts (see
/// [`crate::code`]): `task-NNNNNN-<path>`, `task-NNNNNN-stdout`, or the
/// whole bundle `task-NNNNNN.tar` where names would clash.
pub(crate) fn assemble(spec: &WasmSpec, outputs: &[Vec<u8>]) -> Result<Vec<Artifact>, AssembleError> {
    assemble_bundles(outputs, spec.limits().output_bytes.saturating_mul(2).max(1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::Bundle;

    fn blob(n: u8) -> FileRef {
        FileRef::Blob { name: format!("f{n}.bin"), blob: BlobId([n; 32]) }
    }

    fn spec() -> WasmSpec {
        WasmSpec {
            module: FileRef::Blob { name: "m.wasm".into(), blob: BlobId([9; 32]) },
            args: vec!["--samples".into(), "10".into()],
            env: BTreeMap::from([("MODE".into(), "fast".into())]),
            tasks: None,
            inputs: vec![blob(1), blob(2), blob(3)],
            files: vec![FileRef::Blob { name: "params.json".into(), blob: BlobId([7; 32]) }],
            fuel: None,
            memory_mib: Some(64),
            timeout_ms: None,
            output_mib: None,
        }
    }

    #[test]
    fn one_task_per_input_each_with_the_shared_files_first() {
        let tasks = plan(&spec()).unwrap();
        assert_eq!(tasks.len(), 3);
        assert_eq!(tasks[1].files, vec![("params.json".into(), BlobId([7; 32])), ("f2.bin".into(), BlobId([2; 32]))]);
        assert_eq!((tasks[2].task_idx, tasks[2].n_tasks), (2, 3));
        assert_eq!(tasks[0].limits.memory_bytes, 64 << 20);
        assert_ne!(tasks[0].seed(), tasks[1].seed());
        assert_eq!(spec().assets().unwrap().len(), 5);
    }

    #[test]
    fn bad_specs_name_their_field() {
        let cases: Vec<(WasmSpec, &str)> = vec![
            (WasmSpec { tasks: Some(4), ..spec() }, "wasm.tasks"),
            (WasmSpec { inputs: vec![], tasks: Some(0), ..spec() }, "wasm.tasks"),
            (WasmSpec { memory_mib: Some(5000), ..spec() }, "wasm.memory_mib"),
            (WasmSpec { env: BTreeMap::from([("IOG_X".into(), "1".into())]), ..spec() }, "wasm.env.IOG_X"),
            (WasmSpec { env: BTreeMap::from([("A B".into(), "1".into())]), ..spec() }, "wasm.env.A B"),
            (
                WasmSpec {
                    inputs: vec![FileRef::Blob { name: "params.json".into(), blob: BlobId([1; 32]) }],
                    ..spec()
                },
                "wasm.inputs[0]",
            ),
            (WasmSpec { files: vec![blob(4), blob(4)], ..spec() }, "wasm.files[1]"),
            (WasmSpec { module: FileRef::Blob { name: "..".into(), blob: BlobId([1; 32]) }, ..spec() }, "wasm.module"),
        ];
        for (spec, field) in cases {
            let err = spec.validate().unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
        let unresolved = WasmSpec { module: FileRef::Path("m.wasm".into()), ..spec() };
        unresolved.validate().unwrap();
        let err = plan(&unresolved).unwrap_err();
        assert!(err.to_string().contains("iog job submit"), "{err}");
    }

    #[test]
    fn limits_over_a_cap_name_the_field_and_both_values() {
        let cap = WasmLimits { memory_bytes: 32 << 20, ..WasmLimits::default() };
        assert_eq!(WasmLimits::default().over(&WasmLimits::default()), None);
        let over = WasmLimits::default().over(&cap).unwrap();
        assert!(over.contains("wasm.memory_mib = 64") && over.contains("at most 32"), "{over}");
    }

    #[test]
    fn outputs_become_named_files_or_a_whole_bundle_when_names_clash() {
        let mut one = Bundle::default();
        one.entries.insert("out/result.json".into(), b"{}".to_vec());
        one.entries.insert("stdout".into(), b"hi\n".to_vec());
        let mut clashing = Bundle::default();
        clashing.entries.insert("out/a/b".into(), vec![1]);
        clashing.entries.insert("out/a-b".into(), vec![2]);
        let spec = WasmSpec { inputs: vec![], tasks: Some(2), ..spec() };
        let artifacts = assemble(&spec, &[one.to_tar(), clashing.to_tar()]).unwrap();
        let names: Vec<&str> = artifacts.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["task-000000-result.json", "task-000000-stdout", "task-000001.tar"]);
        let err = assemble(&spec, &[b"junk".to_vec(), one.to_tar()]).unwrap_err();
        assert_eq!(err.task_idx(), Some(0));
    }
}
