//! End-to-end encryption of job data, so that the coordinator's store and
//! other workers see only ciphertext: only the submitter and the workers
//! assigned to a task can read its inputs and results.
//!
//! The scheme, in four steps:
//! 1. The submitter generates one [`JobSecret`] per job and keeps it in a
//!    file. From it, [`JobSecret::task_key`] derives one [`TaskKey`] per task.
//! 2. The submitter seals each task input with its task key
//!    ([`TaskKey::seal`] with [`Purpose::Input`]) before uploading it.
//! 3. Each worker has a [`SealSecret`], derived from its ed25519 identity seed,
//!    and publishes the matching [`SealPublic`], signed by its identity over
//!    [`seal_key_signing_message`]. When a task is placed on a worker, the
//!    submitter [`wrap`]s the task key to that worker's public key, bound to a
//!    context naming the job, the task and the worker; the coordinator only
//!    relays the [`WrappedKey`].
//! 4. The worker [`unwrap`]s the task key, opens the input, and seals its
//!    result with [`Purpose::Output`]. The submitter opens it with the same
//!    task key.
//!
//! Sealing is deterministic on purpose: see [`TaskKey::seal`] for why and what
//! it reveals.
//!
//! This crate does no IO and reads no clock. The only randomness it draws
//! from the operating system is in [`JobSecret::generate`] and [`wrap`];
//! [`wrap_with_randomness`] takes it injected instead.

mod error;
mod hex_text;
mod job_secret;
mod seal_key;
mod sealed;
mod wrap;

pub use error::SealError;
pub use job_secret::{JobSecret, TaskKey};
pub use seal_key::{SealPublic, SealSecret, seal_key_signing_message};
pub use sealed::{Purpose, SEALED_HEADER_BYTES, SEALED_OVERHEAD_BYTES, SEALED_VERSION, is_sealed};
pub use wrap::{WRAPPED_KEY_BYTES, WrappedKey, task_context, unwrap, wrap, wrap_with_randomness};
