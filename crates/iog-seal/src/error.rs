//! What can go wrong when opening sealed data, unwrapping a key or reading
//! a key from hex.

use crate::sealed::Purpose;

/// Opening sealed data, unwrapping a task key or parsing a key failed.
///
/// None of these errors says which byte was wrong or why a check failed
/// beyond what the variant names: an attacker probing with forged data learns
/// nothing more than "rejected".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The bytes do not start with the seal magic `iogS`: they were never
    /// sealed, for example a plaintext result from a worker that does not
    /// encrypt.
    #[error("not sealed data: it does not start with the magic \"iogS\"; it may be plaintext")]
    NotSealed,
    /// The data was sealed by a newer format than this build reads.
    #[error("unsupported version {version} of sealed data; this build reads version 1, upgrade iog to open it")]
    UnsupportedVersion {
        /// The version byte found in the data.
        version: u8,
    },
    /// The data is shorter than the header and tag that every sealed blob has.
    #[error("sealed data is cut off: {len_bytes} bytes, at least {min_bytes} expected; fetch it again")]
    Truncated {
        /// Length of the data given.
        len_bytes: usize,
        /// Length of the smallest sealed blob (an empty plaintext).
        min_bytes: usize,
    },
    /// The purpose byte in the header is neither input nor output.
    #[error("sealed data names unknown purpose byte {byte}; it is corrupt")]
    UnknownPurpose {
        /// The purpose byte found in the data.
        byte: u8,
    },
    /// The data was sealed for one purpose and opened for the other, for
    /// example a task input offered as the task's result.
    #[error("purpose mismatch: sealed as {sealed}, opened as {opened}")]
    PurposeMismatch {
        /// What the data says it was sealed as.
        sealed: Purpose,
        /// What the caller expected.
        opened: Purpose,
    },
    /// The data does not authenticate under this task key: the key belongs to
    /// another task or job, or the data was changed after sealing.
    #[error("wrong key or tampered data: the sealed data does not authenticate under this task key")]
    Tampered,
    /// A wrapped task key does not authenticate: it was wrapped to another
    /// worker, for another context (job, task or worker), or changed on the
    /// way.
    #[error(
        "cannot unwrap task key: it was wrapped to another worker's seal key or for another job, task or worker, \
         or it was tampered with"
    )]
    UnwrapFailed,
    /// An x25519 public key is one of the few low-order points, with which
    /// the shared secret is all zeros and so known to everyone. No honest
    /// party produces one.
    #[error(
        "x25519 public key is a low-order point, which gives an all-zero shared secret; the key is forged or corrupt"
    )]
    LowOrderKey,
    /// Text that should hold a key in hex does not.
    #[error("bad hex for {what}: {reason}; expected {expected_digits} hex digits")]
    BadHex {
        /// What the text should have held, e.g. "job secret".
        what: &'static str,
        /// How many hex digits that takes.
        expected_digits: usize,
        /// What is wrong with the text.
        reason: String,
    },
}
