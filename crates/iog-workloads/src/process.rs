//! The `process` workload: a command the submitter names (a Python
//! script, a simulation binary, a shell pipeline), run once per task in a
//! worker's bubblewrap sandbox.
//!
//! Its files travel as the `wasm` workload's do (see [`crate::code`]): the
//! job file names them by path, `iog job submit` uploads them, and tasks
//! name them by content address. A task sees the contract of
//! `examples/process/README.md`: its arguments and environment,
//! `IOG_TASK_INDEX` and `IOG_N_TASKS`, its files read-only at `/in`, `/out`
//! as its working directory, a read-only system, no network and none of
//! the owner's files; the GPUs it asked for, if any. It runs only on
//! workers whose owner turned on `[executors.process]` and that offer
//! every program it `requires` (`python3`, `blender`).
//!
//! A process is not deterministic unless its program is: replicas compare
//! by digest, so a job that verifies by `replicate` must write the same
//! bytes for the same input (no time stamps, seeded randomness).

use std::collections::BTreeMap;

use iog_types::BlobId;
use serde::{Deserialize, Serialize};

use crate::code::{CODE_TEXT_BYTES_MAX, CodeFields, FileRef, assemble_bundles};
use crate::{Artifact, AssembleError, SpecError, check};

/// The software name a worker advertises when it runs process tasks, and a
/// process job requires.
pub const PROCESS_SOFTWARE: &str = "process";
/// The software name a worker advertises when it runs process tasks in
/// container images (with podman), and a job naming an `image` requires.
pub const CONTAINER_SOFTWARE: &str = "container";
/// Longest image reference.
pub const IMAGE_REF_BYTES_MAX: usize = 512;
/// Most programs `process.requires` may list.
pub const PROCESS_REQUIRES_MAX: usize = 8;
/// Most GPUs one task may ask for.
pub const PROCESS_GPUS_MAX: u32 = 64;

/// Default address-space cap of each process of a task, in MiB.
pub const PROCESS_MEMORY_MIB_DEFAULT: u64 = 1_024;
/// Largest address-space cap, in MiB (1 TiB).
pub const PROCESS_MEMORY_MIB_MAX: u64 = 1 << 20;
/// Default CPU time of each process of a task, in seconds.
pub const PROCESS_CPU_S_DEFAULT: u64 = 600;
/// Largest CPU time, in seconds (one week).
pub const PROCESS_CPU_S_MAX: u64 = 7 * 24 * 3_600;
/// Default wall-clock limit of one task: ten minutes.
pub const PROCESS_TIMEOUT_MS_DEFAULT: u64 = 600_000;
/// Longest wall-clock limit: one day.
pub const PROCESS_TIMEOUT_MS_MAX: u64 = 24 * 3_600_000;
/// Default cap on what one task writes, in MiB.
pub const PROCESS_OUTPUT_MIB_DEFAULT: u64 = 64;
/// Largest cap on what one task writes, in MiB.
pub const PROCESS_OUTPUT_MIB_MAX: u64 = 1_024;

/// The bounds of one process run. A job asks for its own; the worker's
/// owner sets the most any job may have, and a worker refuses a task over
/// its caps ([`ProcessLimits::over`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessLimits {
    /// Memory of the task: its processes together where the worker makes
    /// cgroups, else the address space of each process (RLIMIT_AS); bytes.
    pub memory_bytes: u64,
    /// CPU time of each process (RLIMIT_CPU), in seconds.
    pub cpu_s: u64,
    /// Wall clock of the whole run, in milliseconds.
    pub wall_ms: u64,
    /// Bytes the run may write: files in `/out` and standard output.
    pub output_bytes: u64,
}

impl Default for ProcessLimits {
    /// 1 GiB of memory, ten minutes of CPU and of wall clock, 64 MiB
    /// of output.
    fn default() -> ProcessLimits {
        ProcessLimits {
            memory_bytes: PROCESS_MEMORY_MIB_DEFAULT << 20,
            cpu_s: PROCESS_CPU_S_DEFAULT,
            wall_ms: PROCESS_TIMEOUT_MS_DEFAULT,
            output_bytes: PROCESS_OUTPUT_MIB_DEFAULT << 20,
        }
    }
}

impl ProcessLimits {
    /// The limits a job asks for in its `memory_mib`, `cpu_s`, `timeout_ms`
    /// and `output_mib`, defaults for those it leaves out.
    pub fn asked(
        memory_mib: Option<u64>,
        cpu_s: Option<u64>,
        timeout_ms: Option<u64>,
        output_mib: Option<u64>,
    ) -> Self {
        ProcessLimits {
            memory_bytes: memory_mib.unwrap_or(PROCESS_MEMORY_MIB_DEFAULT).saturating_mul(1 << 20),
            cpu_s: cpu_s.unwrap_or(PROCESS_CPU_S_DEFAULT),
            wall_ms: timeout_ms.unwrap_or(PROCESS_TIMEOUT_MS_DEFAULT),
            output_bytes: output_mib.unwrap_or(PROCESS_OUTPUT_MIB_DEFAULT).saturating_mul(1 << 20),
        }
    }

    /// Checks each limit's range; errors name `<section>.<field>`.
    pub(crate) fn check(&self, section: &str) -> Result<(), SpecError> {
        let field = |name: &str| format!("{section}.{name}");
        check::between(&field("memory_mib"), self.memory_bytes >> 20, 16, PROCESS_MEMORY_MIB_MAX)?;
        check::between(&field("cpu_s"), self.cpu_s, 1, PROCESS_CPU_S_MAX)?;
        check::between(&field("timeout_ms"), self.wall_ms, 1, PROCESS_TIMEOUT_MS_MAX)?;
        check::between(&field("output_mib"), self.output_bytes >> 20, 1, PROCESS_OUTPUT_MIB_MAX)
    }

    /// The first of these limits that is above `cap`'s, as a sentence
    /// naming both; `None` when all fit.
    pub fn over(&self, cap: &ProcessLimits) -> Option<String> {
        let checks = [
            ("process.memory_mib", self.memory_bytes, cap.memory_bytes, 1 << 20),
            ("process.cpu_s", self.cpu_s, cap.cpu_s, 1),
            ("process.timeout_ms", self.wall_ms, cap.wall_ms, 1),
            ("process.output_mib", self.output_bytes, cap.output_bytes, 1 << 20),
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

/// Parameters of the `process` workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// The program: a name found on the sandbox's PATH (`python3`), or
    /// `/in/<name>` for one of the job's `files` (run as is: a script
    /// needs its `#!` line).
    pub program: String,
    /// Its arguments.
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
    /// Files every task sees at `/in` (the script, parameters).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<FileRef>,
    /// Programs a worker must offer (`python3`, `blender`): the job is
    /// placed only on workers that list them all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// A container image to run in (`docker.io/library/python:3.12-slim`;
    /// pin it with `@sha256:…` for replicas that agree): its file system
    /// replaces the worker's `/usr` and `/etc`, and its environment comes
    /// first. Only workers that offer `container` take the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// GPUs each task uses (default 0: none is visible to it). With GPUs,
    /// `[resources]` may name their models and memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpus: Option<u32>,
    /// Memory of the task, in MiB (default 1024, at most 1 TiB; see
    /// [`ProcessLimits::memory_bytes`]);
    /// a CPU job is placed only on workers lending at least this much.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    /// CPU time of each process, in seconds (default 600, at most a week).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_s: Option<u64>,
    /// Wall-clock limit of each task in milliseconds (default 600000, at
    /// most one day; within `job.task_timeout_ms` when that is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Most each task may write to `/out` and standard output, in MiB
    /// (default 64, at most 1024).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_mib: Option<u64>,
}

impl ProcessSpec {
    /// The limits every task of the job runs under.
    pub fn limits(&self) -> ProcessLimits {
        ProcessLimits::asked(self.memory_mib, self.cpu_s, self.timeout_ms, self.output_mib)
    }

    /// How many tasks the job splits into.
    pub fn n_tasks(&self) -> u64 {
        self.fields().n_tasks()
    }

    /// GPUs each task uses.
    pub fn gpus(&self) -> u32 {
        self.gpus.unwrap_or(0)
    }

    /// The software a worker must offer: `process`, then what the job
    /// requires.
    pub fn software(&self) -> Vec<String> {
        let mut software = vec![PROCESS_SOFTWARE.to_owned()];
        if self.image.is_some() {
            software.push(CONTAINER_SOFTWARE.to_owned());
        }
        for name in &self.requires {
            if !software.contains(name) {
                software.push(name.clone());
            }
        }
        software
    }

    fn fields(&self) -> CodeFields<'_> {
        CodeFields {
            section: "process",
            args: &self.args,
            env: &self.env,
            tasks: self.tasks,
            inputs: &self.inputs,
            files: &self.files,
        }
    }

    /// Every file the spec names, with the field it is in.
    pub fn file_refs(&self) -> impl Iterator<Item = (String, &FileRef)> {
        let inputs = self.inputs.iter().enumerate().map(|(i, file)| (format!("process.inputs[{i}]"), file));
        inputs.chain(self.files.iter().enumerate().map(|(i, file)| (format!("process.files[{i}]"), file)))
    }

    /// Mutable access to every file the spec names, with its field.
    pub(crate) fn file_refs_mut(&mut self) -> impl Iterator<Item = (String, &mut FileRef)> {
        let inputs = self.inputs.iter_mut().enumerate().map(|(i, file)| (format!("process.inputs[{i}]"), file));
        inputs.chain(self.files.iter_mut().enumerate().map(|(i, file)| (format!("process.files[{i}]"), file)))
    }

    /// The blobs every task reads besides its own input: each file, once.
    pub fn assets(&self) -> Result<Vec<BlobId>, SpecError> {
        crate::code::assets(self.file_refs())
    }

    /// Checks every field. Paths (not yet uploaded) pass: the coordinator
    /// refuses them when it plans the job.
    pub fn validate(&self) -> Result<(), SpecError> {
        check_program("process.program", &self.program)?;
        if let Some(image) = &self.image {
            check_image("process.image", image)?;
            if !self.requires.is_empty() {
                return Err(SpecError::invalid(
                    "process.requires",
                    "cannot be set together with process.image: the image brings its own programs, and requires \
                     names programs of the worker's own system; remove requires",
                ));
            }
        }
        self.fields().validate(&[])?;
        if self.requires.len() > PROCESS_REQUIRES_MAX {
            return Err(SpecError::invalid(
                "process.requires",
                format!("lists at most {PROCESS_REQUIRES_MAX} programs, got {}", self.requires.len()),
            ));
        }
        for (i, name) in self.requires.iter().enumerate() {
            if !iog_sched::offer::valid_software_name(name) {
                return Err(SpecError::invalid(
                    format!("process.requires[{i}]"),
                    format!(
                        "is {name:?}, which is not a software name: lowercase letters, digits and '-', as workers \
                         advertise them (`python3`, `blender`)"
                    ),
                ));
            }
        }
        check::between("process.gpus", self.gpus(), 0, PROCESS_GPUS_MAX)?;
        self.limits().check("process")
    }
}

/// Checks an image reference: `[registry/]name[:tag][@sha256:…]`.
pub(crate) fn check_image(field: &str, image: &str) -> Result<(), SpecError> {
    let fine = !image.is_empty()
        && image.len() <= IMAGE_REF_BYTES_MAX
        && !image.starts_with(['-', '/', ':', '@'])
        // A transport with a path (`docker-archive:/…`) would read this
        // machine's files; a registry's port is digits before its `/`.
        && !image.contains(":/")
        && image.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b));
    if fine {
        Ok(())
    } else {
        Err(SpecError::invalid(
            field,
            format!(
                "is {image:?}, which is not an image reference such as docker.io/library/python:3.12-slim \
                 (letters, digits and . _ - / : @)"
            ),
        ))
    }
}

/// Checks a program: a bare name, or an absolute path inside the sandbox.
pub(crate) fn check_program(field: &str, program: &str) -> Result<(), SpecError> {
    let fine = !program.is_empty()
        && program.len() <= CODE_TEXT_BYTES_MAX
        && !program.contains('\0')
        && (program.starts_with('/') || !program.contains('/'));
    if fine {
        Ok(())
    } else {
        Err(SpecError::invalid(
            field,
            format!(
                "is {program:?}; name a program on the sandbox's PATH (`python3`) or give a path inside the \
                 sandbox (`/in/run.sh` for a file listed in files)"
            ),
        ))
    }
}

/// The input of one process task: everything a worker needs, with files
/// named by blob. Public so the worker can run it; built only by [`plan`]
/// (and by the `blender` workload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessTaskInput {
    /// The program, on the sandbox's PATH or a path inside it.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// The job's environment, by name.
    pub env: Vec<(String, String)>,
    /// The files at `/in`: the job's shared files, then the task's own.
    pub files: Vec<(String, BlobId)>,
    /// Software the worker must offer besides `process` (checked again by
    /// the worker before it runs the task).
    pub requires: Vec<String>,
    /// The container image it runs in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// GPUs the task uses.
    pub gpus: u32,
    /// This task's index, from 0.
    pub task_idx: u32,
    /// Tasks in the job.
    pub n_tasks: u32,
    /// What the run may use.
    pub limits: ProcessLimits,
    /// Whether standard output is part of the result (Blender's log, with
    /// its timings, is not).
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub stdout: bool,
    /// Whether the text chunks of PNG images in `/out` (render times, dates)
    /// are dropped before the result is hashed, so replicas agree.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub strip_png_text: bool,
}

impl ProcessTaskInput {
    /// `bundle` as the result of this task: without standard output when
    /// the task keeps none, and with its PNG images' text chunks dropped
    /// when it asks for that.
    pub fn finish(&self, bundle: &mut crate::Bundle) {
        if !self.stdout {
            bundle.entries.remove(crate::BUNDLE_STDOUT);
        }
        if self.strip_png_text {
            for (path, bytes) in bundle.entries.iter_mut() {
                if path.starts_with("out/")
                    && path.ends_with(".png")
                    && let Some(stripped) = png_without_text(bytes)
                {
                    *bytes = stripped;
                }
            }
        }
    }
}

/// A PNG image without its text and time chunks (`tEXt`, `zTXt`, `iTXt`,
/// `tIME`), which say when and how long, not what; `None` when `bytes` is
/// not a well-formed PNG.
pub fn png_without_text(bytes: &[u8]) -> Option<Vec<u8>> {
    const SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
    let mut rest = bytes.strip_prefix(SIGNATURE)?;
    let mut out = SIGNATURE.to_vec();
    while !rest.is_empty() {
        let length = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
        let chunk = rest.get(..length.checked_add(12)?)?;
        let kind = &chunk[4..8];
        if ![&b"tEXt"[..], b"zTXt", b"iTXt", b"tIME"].contains(&kind) {
            out.extend_from_slice(chunk);
        }
        rest = &rest[chunk.len()..];
        if kind == b"IEND" {
            break;
        }
    }
    Some(out)
}

fn yes() -> bool {
    true
}

pub(crate) fn plan(spec: &ProcessSpec) -> Result<Vec<ProcessTaskInput>, SpecError> {
    spec.validate()?;
    let files = spec.fields().task_files()?;
    let n_tasks = spec.n_tasks() as u32;
    let env: Vec<(String, String)> = spec.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(files
        .into_iter()
        .zip(0..n_tasks)
        .map(|(files, task_idx)| ProcessTaskInput {
            program: spec.program.clone(),
            args: spec.args.clone(),
            env: env.clone(),
            files,
            requires: spec.requires.clone(),
            image: spec.image.clone(),
            gpus: spec.gpus(),
            task_idx,
            n_tasks,
            limits: spec.limits(),
            stdout: true,
            strip_png_text: false,
        })
        .collect())
}

/// Each task's files and standard output as artifacts (see
/// [`crate::code`]): `task-NNNNNN-<path>`, `task-NNNNNN-stdout`, or the
/// whole bundle `task-NNNNNN.tar` where names would clash.
pub(crate) fn assemble(spec: &ProcessSpec, outputs: &[Vec<u8>]) -> Result<Vec<Artifact>, AssembleError> {
    assemble_bundles(outputs, spec.limits().output_bytes.saturating_mul(2).max(1 << 20))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> ProcessSpec {
        ProcessSpec {
            program: "python3".into(),
            args: vec!["/in/count.py".into()],
            env: BTreeMap::new(),
            tasks: None,
            inputs: vec![
                FileRef::Blob { name: "a.csv".into(), blob: BlobId([1; 32]) },
                FileRef::Blob { name: "b.csv".into(), blob: BlobId([2; 32]) },
            ],
            files: vec![FileRef::Blob { name: "count.py".into(), blob: BlobId([3; 32]) }],
            requires: vec!["python3".into()],
            image: None,
            gpus: None,
            memory_mib: None,
            cpu_s: Some(30),
            timeout_ms: None,
            output_mib: None,
        }
    }

    #[test]
    fn one_task_per_input_with_the_script_and_its_requirements() {
        let tasks = plan(&spec()).unwrap();
        assert_eq!(tasks.len(), 2);
        assert_eq!(tasks[1].files, vec![("count.py".into(), BlobId([3; 32])), ("b.csv".into(), BlobId([2; 32]))]);
        assert_eq!(tasks[0].limits.cpu_s, 30);
        assert_eq!(tasks[0].limits.memory_bytes, PROCESS_MEMORY_MIB_DEFAULT << 20);
        assert_eq!(spec().software(), ["process", "python3"]);
        assert_eq!(spec().assets().unwrap().len(), 3);
    }

    #[test]
    fn bad_specs_name_their_field() {
        let cases: Vec<(ProcessSpec, &str)> = vec![
            (ProcessSpec { program: "bin/run".into(), ..spec() }, "process.program"),
            (ProcessSpec { program: String::new(), ..spec() }, "process.program"),
            (ProcessSpec { requires: vec!["Python 3".into()], ..spec() }, "process.requires[0]"),
            (ProcessSpec { gpus: Some(65), ..spec() }, "process.gpus"),
            (ProcessSpec { image: Some("python 3".into()), ..spec() }, "process.image"),
            (ProcessSpec { image: Some("--privileged".into()), ..spec() }, "process.image"),
            (ProcessSpec { image: Some("docker-archive:/root/x.tar".into()), ..spec() }, "process.image"),
            (ProcessSpec { memory_mib: Some(1), ..spec() }, "process.memory_mib"),
            (ProcessSpec { tasks: Some(3), ..spec() }, "process.tasks"),
            (ProcessSpec { env: BTreeMap::from([("IOG_X".into(), "1".into())]), ..spec() }, "process.env.IOG_X"),
        ];
        for (spec, field) in cases {
            let err = spec.validate().unwrap_err();
            assert_eq!(err.field(), Some(field), "{err}");
        }
        ProcessSpec { program: "/in/run.sh".into(), ..spec() }.validate().unwrap();
        let image = Some("docker.io/library/python:3.12@sha256:0a1b".to_owned());
        let err = ProcessSpec { image: image.clone(), ..spec() }.validate().unwrap_err();
        assert_eq!(err.field(), Some("process.requires"));
        let pinned = ProcessSpec { image, requires: vec![], ..spec() };
        pinned.validate().unwrap();
        assert_eq!(pinned.software(), ["process", "container"]);
    }

    #[test]
    fn png_text_chunks_go_and_the_pixels_stay() {
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut bytes = (data.len() as u32).to_be_bytes().to_vec();
            bytes.extend_from_slice(kind);
            bytes.extend_from_slice(data);
            bytes.extend_from_slice(&[0, 0, 0, 0]);
            bytes
        };
        let signature = b"\x89PNG\r\n\x1a\n".to_vec();
        let with_text = [
            signature.clone(),
            chunk(b"IHDR", &[1; 13]),
            chunk(b"tEXt", b"cycles.total_time\x0000:00.06"),
            chunk(b"IDAT", b"pixels"),
            chunk(b"IEND", b""),
        ]
        .concat();
        let without = [signature, chunk(b"IHDR", &[1; 13]), chunk(b"IDAT", b"pixels"), chunk(b"IEND", b"")].concat();
        assert_eq!(png_without_text(&with_text).unwrap(), without);
        assert_eq!(png_without_text(&with_text[..with_text.len() - 3]), None);
        assert_eq!(png_without_text(b"not a png"), None);

        let mut task = plan(&spec()).unwrap().remove(0);
        let mut bundle = crate::Bundle::default();
        bundle.entries.insert("out/frame.png".into(), with_text.clone());
        bundle.entries.insert("stdout".into(), b"log".to_vec());
        task.finish(&mut bundle);
        assert_eq!(bundle.entries["out/frame.png"], with_text, "only tasks that ask are changed");
        (task.stdout, task.strip_png_text) = (false, true);
        task.finish(&mut bundle);
        assert_eq!(bundle.entries["out/frame.png"], without);
        assert!(!bundle.entries.contains_key("stdout"));
    }

    #[test]
    fn limits_over_a_cap_name_the_field_and_both_values() {
        let cap = ProcessLimits { cpu_s: 10, ..ProcessLimits::default() };
        assert_eq!(ProcessLimits::default().over(&ProcessLimits::default()), None);
        let over = ProcessLimits::default().over(&cap).unwrap();
        assert!(over.contains("process.cpu_s = 600") && over.contains("at most 10"), "{over}");
    }
}
