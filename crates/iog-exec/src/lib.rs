//! Executors for code that users bring to the network, run on a worker
//! without letting it harm the owner's machine.
//!
//! [`ProcessExecutor`] runs a command under bubblewrap: a read-only view of
//! the system's `/usr` (and a few harmless files of `/etc`), the task's
//! files read-only at `/in`, an empty `/out` as its working directory, a
//! private `/tmp`, `/proc` and `/dev` of its own, no network unless the
//! owner allows it, none of the owner's files (home, the worker's data dir
//! and keys are simply not there), only the GPUs the task was given, and
//! rlimits on CPU time and file size. Where the machine lets the worker
//! make cgroups ([`cgroup`]), each task gets one capping the memory of all
//! its processes together and how many it may have; elsewhere each
//! process's address space is capped instead. A run past its wall clock,
//! a cancelled one or one that writes too much is killed with its whole
//! PID namespace (and cgroup), so nothing it started outlives it.
//!
//! [`WasmExecutor`] (feature `wasm`, on by default) runs a WebAssembly module (WASI preview 1) per task
//! with wasmtime. A module sees exactly this, and nothing else:
//!
//! - `argv`: the module's name, then the job's arguments; the environment
//!   the job gives, plus `IOG_TASK_INDEX` and `IOG_N_TASKS`;
//! - the task's input files, read-only, at `/in`;
//! - an empty directory it may write, at `/out`: every regular file left
//!   there (and its standard output) is the task's output;
//! - a clock that stands still at [`FIXED_WALL_CLOCK_S`] and random bytes
//!   drawn from the task's own seed, so the same task gives the same bytes
//!   on every worker and replicas can be compared by digest;
//! - no network (WASI preview 1 has no way to open a connection, and no
//!   socket is handed in), no other file, no environment of the worker's.
//!
//! Each run is bounded by [`WasmLimits`]: an instruction budget (fuel), a
//! cap on linear memory, a wall-clock limit (epoch interruption, checked
//! every [`EPOCH_TICK`]), and caps on what it may write. Running past any of
//! them stops the module with a [`WasmError`] that says which; the worker
//! running it is unaffected.

pub mod cgroup;
mod out;
mod process;
#[cfg(feature = "wasm")]
mod wasm;

pub use iog_workloads::{BUNDLE_STDOUT, Bundle, BundleError, WasmLimits};
pub use out::{OUT_FILES_MAX, STDERR_TAIL_BYTES};
pub use process::{MemoryBound, PROCESS_POLL, ProcessError, ProcessExecutor, ProcessLimits, ProcessRun, ProcessTask};
#[cfg(feature = "wasm")]
pub use wasm::{EPOCH_TICK, FIXED_WALL_CLOCK_S, INPUT_NAME_BYTES_MAX, WasmError, WasmExecutor, WasmRun, WasmTask};
