//! Hardware challenges as a pure core.
//!
//! A worker claims what its devices can do; the coordinator checks the claim
//! by sending challenges sized to it, on join and at random times after,
//! each under a deadline that only the claimed hardware meets. Both sides
//! use this crate: the worker to answer, the coordinator to generate and
//! check. It does no IO, reads no clock and draws no random numbers: seeds
//! and the network allowance are inputs, and the caller measures time.
//!
//! Every challenge is asymmetric: answering costs the worker what the
//! claimed device is for, checking costs the coordinator a tiny fraction.
//!
//! | challenge | worker | coordinator | ratio in operations |
//! |-----------|--------|-------------|---------------------|
//! | [`compute`]: int8 matrix product, Merkle root, random entries | `n_products · n³` multiply-adds | `n_samples · n` multiply-adds and about `48 · n_samples` hashes | ≈ `n_products · n² / n_samples` |
//! | [`memory`]: hash-chain fill, dependent probe walk committed by a Merkle root | `memory_bytes / 32` hashes, then `n_probes` reads and hashes | ≤ `n_checked · chunks_per_block` hashes, half on average, and `2 · n_checked` proofs | ≈ `memory_bytes / (16 · n_checked · chunks_per_block)` |
//! | [`puzzle`]: m hashes with d leading zero bits | `m · 2^d` hashes on average | `m` hashes | `2^d` |
//!
//! Measured on a two-core x86-64 CPU (`examples/challenge_costs.rs`; worker
//! on both cores, check on one), worker time over check time:
//!
//! | challenge | size | worker | check | ratio |
//! |-----------|------|--------|-------|-------|
//! | compute | n = 256, s = 32 | 5.9 ms | 0.17 ms | 35 |
//! | compute | n = 1024, s = 32 | 188 ms | 0.29 ms | 640 |
//! | memory | 16 MiB, 2^20 steps, 64 checks of 1024-chunk chains | 640 ms | 3.6 ms | 180 |
//! | memory | 256 MiB, same | 1598 ms | 3.9 ms | 406 |
//! | puzzle | 1 s target (d = 21, m = 9) | 981 ms | 2 µs | 6 · 10⁵ |
//!
//! The compute ratio in time sits below the ratio in operations because the
//! worker's multiply-adds are vectorised while each checked entry pays about
//! 8 µs of fixed hashing and generation; it grows as n³ over the check's
//! roughly linear cost, so a CPU would see about 10⁵ at n = 8192, and a GPU
//! answering in milliseconds shifts the comparison to device time against
//! coordinator time, which is what matters: the coordinator's cost per
//! challenge stays near a millisecond whatever the device.
//!
//! What each proves, and what it does not, is written out in its module:
//! in short, [`compute`] proves int8 throughput down to the deadline's slack
//! (`1 / 1.5` of the claim when the network allowance is small) and catches
//! a worker that computed only a fraction f of the product with probability
//! `1 − f^s`; [`memory`] proves only that at least a fraction `1/k*` of the
//! claimed memory is held, k* set by the network allowance and the time allowed per
//! step (about 130 over a wide-area network, 122 at the least; the walk is
//! bound to its own commitment so that more cores buy a cheater at most about
//! a factor of two); [`puzzle`] proves a hash rate of
//! about `1/2.5` of the claim per puzzle. None proves where the work ran: a
//! worker can relay a challenge to a faster machine and pass. None proves
//! the device stays available, which is what challenges at random times are
//! for.
//!
//! [`claim`] turns a [`Claim`] (int8 ops per second, memory bytes, hash
//! rate) and a target time into each challenge and its deadlines; the
//! [`merkle`] module is the small tree the compute challenge commits with.
//!
//! Every challenge is a serde value for the wire; every answer arriving from
//! the network is checked for shape (counts, lengths, proof depths) before
//! any work, against the named limits of its module, and a malformed answer
//! is an error, never a panic.

pub mod claim;
pub mod compute;
mod draw;
mod matrix;
pub mod memory;
pub mod merkle;
pub mod puzzle;

/// A 32-byte seed: challenges, sample positions and probe walks are all
/// derived from seeds the coordinator draws and passes in.
pub type Seed = [u8; 32];

pub use claim::{Claim, ClaimError, ComputePlan, HashPlan, MemoryPlan, gpu_claim};
pub use compute::{ComputeAnswer, ComputeChallenge, ComputeCheckError, ComputeCommitment, ComputeParamsError};
pub use memory::{MemoryAnswer, MemoryChallenge, MemoryCheckError, MemoryCommitment, MemoryOpening, MemoryParamsError};
pub use merkle::{Hash, MerkleError};
pub use puzzle::{HashAnswer, HashChallenge, HashCheckError, HashParamsError, HashSolveError};
