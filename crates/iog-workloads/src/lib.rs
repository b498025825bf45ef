//! Job specs and the built-in workloads.
//!
//! A job file (TOML) names one workload and its parameters. [`plan`] splits the
//! job into self-contained task inputs, [`run_task`] runs one input on this
//! machine's CPU, and [`assemble`] turns all task outputs into the job's
//! artifacts. Every workload is deterministic: the same task input gives the
//! same output bytes on any machine, so replicas can be compared by digest,
//! except where a task states its tolerance instead ([`compares_within_tolerance`]:
//! GPU kernels, and `train`, which repeats bit for bit only on one CPU).
//!
//! A chained workload (`nbody`, `train`, see [`chain_length`]) plans only
//! its first link of tasks; [`next_inputs`] makes each later link's inputs
//! from the link before it and its accepted outputs.

#![warn(missing_docs)]

pub mod accel;
pub mod blender;
pub mod bundle;
mod check;
pub mod code;
mod demo;
pub mod diloco;
mod error;
pub mod hash;
pub mod infer;
pub mod nbody;
pub mod noop;
pub mod process;
pub mod render;
pub mod report;
mod resources;
pub mod sim;
mod spec;
pub mod spot;
mod task;
pub mod train;
pub mod wasm;

pub use accel::{AccelError, Accelerator, DeviceChoice, HashFinds, HashSearch, Ran};
pub use blender::{BLENDER_SOFTWARE, BlenderSpec};
pub use bundle::{BUNDLE_STDOUT, Bundle, BundleError};
pub use code::FileRef;
pub use demo::{DEMO_JOB_TOML, DEMO_SCENE_TOML, demo_job};
pub use error::{SpecError, SpecErrorKind};
pub use infer::{INFER_RELATIVE_ERROR, InferData, InferSpec, InferTask};
pub use nbody::{NBODY_GPU_RELATIVE_ERROR, NbodyKernelTask, NbodySpec, NbodyState};
pub use process::{CONTAINER_SOFTWARE, PROCESS_SOFTWARE, ProcessLimits, ProcessSpec, ProcessTaskInput};
pub use resources::ResourcesSpec;
pub use sim::{SimBlock, SimKernelTask, SimModel, SimSpec, Tolerance};
pub use spec::{
    JOB_NAME_CHARS_MAX, JobFile, JobSection, JobSpec, MAX_ATTEMPTS_MAX, PaymentSpec, PaymentTerms,
    SCENE_FILE_BYTES_MAX, SealedSpec, VerifySpec, WORKLOAD_KINDS, WorkloadSpec, load_job_file, parse_job_file,
    parse_job_file_with, parse_job_json,
};
pub use spot::{SPOT_HASH_SHARE, SPOT_PIXELS, Spot};
pub use task::{
    Artifact, AssembleError, Decoded, Link, MAX_TASKS, RunError, TASK_INPUT_BYTES_MAX, TaskRun, assemble, chain_length,
    chain_state, check_output, checks_outputs, compares_within_tolerance, decode_task, json_view, nbody_kernel_task,
    next_input, next_inputs, outputs_agree, plan, plan_on, render_kernel_task, run_task, run_task_on, spot_check,
};
pub use train::{DataFile, DataSpec, ML_SOFTWARE, TRAIN_RELATIVE_ERROR, TrainSpec};
pub use wasm::{WASM_SOFTWARE, WasmLimits, WasmSpec, WasmTaskInput};
