//! The `[hash]` section of a job file.

use serde::{Deserialize, Serialize};

use crate::task::MAX_TASKS;
use crate::{SpecError, check};

/// Longest accepted `hash.data`, in bytes.
pub const DATA_BYTES_MAX: usize = 4096;
/// Largest accepted `hash.nonce_count` (10^12).
pub const NONCE_COUNT_MAX: u64 = 1_000_000_000_000;
/// Smallest accepted `hash.nonces_per_task`.
pub const NONCES_PER_TASK_MIN: u64 = 1_000;
/// Largest accepted `hash.nonces_per_task` (10^10).
pub const NONCES_PER_TASK_MAX: u64 = 10_000_000_000;
/// Largest accepted `hash.difficulty_bits`: the test reads the first 8 bytes.
pub const DIFFICULTY_BITS_MAX: u32 = 64;
/// Most found nonces a job may expect, and most a task keeps (the first in
/// nonce order). Bounds the size of task outputs and of the result.
pub const FOUND_MAX: u64 = 10_000;

/// Which hash function the search uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HashAlgorithm {
    /// BLAKE3 with 32-byte output.
    Blake3,
    /// SHA-256 applied twice, as in Bitcoin.
    Sha256d,
}

/// Parameters of the `hash` workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HashSpec {
    /// The hash function.
    pub algorithm: HashAlgorithm,
    /// The message prefix, hashed as its UTF-8 bytes followed by the nonce.
    pub data: String,
    /// The first nonce tried; 0 by default.
    #[serde(default)]
    pub nonce_start: u64,
    /// How many nonces are tried, 1 to 10^12.
    pub nonce_count: u64,
    /// Nonces per task, 1000 to 10^10; the last task may get fewer.
    pub nonces_per_task: u64,
    /// How many leading bits of the hash must be zero, 1 to 64.
    pub difficulty_bits: u32,
}

impl HashSpec {
    /// Checks every field's range and the limits on tasks and found nonces.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.data.len() > DATA_BYTES_MAX {
            return Err(SpecError::invalid(
                "hash.data",
                format!("must be at most {DATA_BYTES_MAX} bytes, got {}", self.data.len()),
            ));
        }
        check::between("hash.nonce_count", self.nonce_count, 1, NONCE_COUNT_MAX)?;
        check::between("hash.nonces_per_task", self.nonces_per_task, NONCES_PER_TASK_MIN, NONCES_PER_TASK_MAX)?;
        check::between("hash.difficulty_bits", self.difficulty_bits, 1, DIFFICULTY_BITS_MAX)?;
        if self.nonce_start.checked_add(self.nonce_count - 1).is_none() {
            return Err(SpecError::invalid(
                "hash.nonce_count",
                format!(
                    "runs past the largest nonce: hash.nonce_start + hash.nonce_count must be \
                     at most 2^64, got {} + {}",
                    self.nonce_start, self.nonce_count
                ),
            ));
        }
        let n_tasks = self.n_tasks();
        if n_tasks > MAX_TASKS {
            return Err(SpecError::invalid(
                "hash.nonces_per_task",
                format!(
                    "is too small for hash.nonce_count: it makes {n_tasks} tasks, at most \
                     {MAX_TASKS}; raise it to at least {}",
                    self.nonce_count.div_ceil(MAX_TASKS)
                ),
            ));
        }
        check_expected_found(self.nonce_count, self.difficulty_bits, "hash.difficulty_bits")
    }

    /// How many tasks the search splits into.
    pub fn n_tasks(&self) -> u64 {
        self.nonce_count.div_ceil(self.nonces_per_task.max(1))
    }
}

/// Rejects searches expected to find more than [`FOUND_MAX`] nonces: their
/// output would be large and the difficulty is almost certainly a mistake.
pub(crate) fn check_expected_found(nonce_count: u64, difficulty_bits: u32, field: &str) -> Result<(), SpecError> {
    let expected = expected_found(nonce_count, difficulty_bits);
    if expected > FOUND_MAX {
        let enough_bits = (difficulty_bits..=DIFFICULTY_BITS_MAX)
            .find(|&bits| expected_found(nonce_count, bits) <= FOUND_MAX)
            .unwrap_or(DIFFICULTY_BITS_MAX);
        return Err(SpecError::invalid(
            field,
            format!(
                "= {difficulty_bits} is too low for {nonce_count} nonces: about {expected} would \
                 qualify, at most {FOUND_MAX} are kept; raise it to at least {enough_bits}"
            ),
        ));
    }
    Ok(())
}

/// The mean number of qualifying nonces among `nonce_count`.
fn expected_found(nonce_count: u64, difficulty_bits: u32) -> u64 {
    nonce_count.checked_shr(difficulty_bits).unwrap_or(0)
}
