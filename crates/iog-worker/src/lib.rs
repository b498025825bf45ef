//! The worker agent.
//!
//! A worker holds an ed25519 identity (its id is the public key), discovers
//! its devices, and keeps one WebSocket session to its coordinator, opened
//! outbound so it works from behind NAT. It heartbeats, runs the tasks it is
//! given, uploads their outputs as blobs and reports them; a result stays
//! held (and is sent again after a reconnect) until the coordinator
//! acknowledges it. A lost connection is retried with jittered exponential
//! backoff, forever, until the worker is told to stop.
//!
//! When the coordinator names peers, the worker measures its round trips to
//! them over UDP ([`probe`]) and keeps a network coordinate from them, which
//! it reports with its heartbeats. It answers the coordinator's hardware
//! challenges (`iog-trust`) on blocking threads.

mod agent;
mod challenge;
#[cfg(feature = "cheats")]
mod cheat;
mod config;
mod exec;
mod gpu;
mod keys;
pub mod probe;
mod runner;
mod watch;

pub use agent::{Refused, WorkerEvent, WorkerHandle, start};
#[cfg(feature = "cheats")]
pub use challenge::{CLAIMED_GPU, Cheat};
pub use config::{
    Executors, ExecutorsFile, GpuFile, MEMORY_LENT_SHARE_DEFAULT, OfferFile, OfferTerms, PROBE_BIND_DEFAULT,
    PROCESS_CAPS_DEFAULT, PROCESS_PROGRAMS_DEFAULT, PROCESS_VERSION, ProbeFile, ProcessCaps, ProcessExecutorFile,
    WASM_BUILT_IN, WASM_CAPS_DEFAULT, WASM_VERSION, WasmExecutorFile, WorkerConfig, WorkerFile, memory_gib_bytes,
};
pub use exec::{detect_podman, detect_programs};
pub use gpu::{GPU_BUILT_IN, GpuKernels, discover};
