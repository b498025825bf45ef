//! Kernels that run a built-in workload's tasks on a device other than the
//! CPU: a GPU, through the `iog-gpu` crate's wgpu compute shaders.
//!
//! An [`Accelerator`] gives the part of a task that is worth moving (the
//! nonce search of a hash task); everything around it (checking the input,
//! hashing the kept nonces again, writing the output) stays here, shared
//! with the CPU path, so both give the same output bytes and replicas on
//! different devices agree by digest.

use crate::TaskRun;
use crate::hash::HashAlgorithm;

/// Where a job asks its tasks to run, from its `resources.device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// On the CPU (`cpu`, the default).
    #[default]
    Cpu,
    /// On a GPU where the worker has a kernel for the workload (`gpu` or
    /// `any`); on its CPU otherwise.
    Gpu,
}

/// A nonce search for a kernel: `data || nonce` (nonce as 8 little-endian
/// bytes) hashed for every nonce of `nonce_start..nonce_start + nonce_count`.
#[derive(Debug, Clone, Copy)]
pub struct HashSearch<'a> {
    /// The hash function.
    pub algorithm: HashAlgorithm,
    /// The message prefix.
    pub data: &'a [u8],
    /// The first nonce.
    pub nonce_start: u64,
    /// How many nonces, at least 1; the range does not pass `u64::MAX`.
    pub nonce_count: u64,
    /// Leading zero bits a hash needs, 1 to 64.
    pub difficulty_bits: u32,
}

/// What a kernel found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HashFinds {
    /// The first qualifying nonces in increasing order, at most
    /// [`crate::hash::FOUND_MAX`].
    pub nonces: Vec<u64>,
    /// How many nonces qualified in all.
    pub count: u64,
}

/// A kernel that failed: the device was lost, ran out of memory, or gave
/// an answer that does not check out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{device}: {message}")]
pub struct AccelError {
    /// The device, as the worker names it (`gpu0`).
    pub device: String,
    /// What went wrong.
    pub message: String,
}

/// A device's kernels for the built-in workloads.
pub trait Accelerator: Send + Sync {
    /// The device's name as the worker offers it (`gpu0`).
    fn device(&self) -> &str;

    /// Runs a nonce search. `Ok(None)` when this device has no kernel for
    /// these parameters (the CPU runs the search instead).
    fn hash_search(&self, search: &HashSearch<'_>) -> Result<Option<HashFinds>, AccelError>;
}

/// A task's run, and where it ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    /// The output and work done, the same bytes on any device.
    pub run: TaskRun,
    /// The accelerator's device when one of its kernels ran the task;
    /// `None` when the CPU did.
    pub device: Option<String>,
}
