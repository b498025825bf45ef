//! The `hash` workload: a proof-of-work search for nonces whose hash of
//! `data || nonce` (nonce as 8 little-endian bytes) starts with enough zero bits.

mod search;
mod spec;
pub(crate) mod tasks;

pub use search::{hash_nonce, leading_zero_bits, search_range};
pub use spec::{
    DATA_BYTES_MAX, DIFFICULTY_BITS_MAX, FOUND_MAX, HashAlgorithm, HashSpec, NONCE_COUNT_MAX, NONCES_PER_TASK_MAX,
    NONCES_PER_TASK_MIN,
};
pub use tasks::{FoundNonce, HashResult, SPOT_NONCES_MAX};
