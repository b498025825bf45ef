//! The memory challenge: fill the claimed bytes from a seed, then answer a
//! walk of dependent probes faster than the content could be recomputed.
//!
//! # Content
//!
//! Memory is cut into blocks of `chunks_per_block` chunks of
//! [`CHUNK_BYTES`]. Block b has a key `K_b = blake3_derive_key(seed ‖ b)`;
//! its chunks form a hash chain, `c_0 = H_{K_b}(0³²)` and
//! `c_j = H_{K_b}(c_{j−1})` with H the keyed blake3. Deriving chunk j from
//! nothing costs j + 1 hashes, one after another (a chain cannot be split
//! over cores); looking it up costs one memory read. Blocks are independent,
//! so the honest fill runs in parallel over blocks.
//!
//! # Protocol
//!
//! 1. The coordinator sends a [`MemoryChallenge`]; the worker fills
//!    ([`fill`]) and says it is ready. The fill time proves nothing (a worker
//!    may fill slowly for many reasons) and gets a liveness deadline only.
//! 2. The coordinator reveals a probe seed and starts the clock. The worker
//!    walks `n_probes` steps ([`MemoryFill::answer`]): the position of step
//!    r is drawn from the probe seed, r and the chunk read at step r − 1
//!    ([`probe_position`]), so the positions appear one at a time and only
//!    to whoever holds the previous chunk. It sends every chunk read.
//! 3. The coordinator ([`check`]) picks `n_checked` steps at random after
//!    receiving the answer, derives each one's position from the previous
//!    chunk in the answer and recomputes the chunk there from the seed.
//!
//! The walk is a change from sending P independent positions: independent
//! probes let a cheater recompute them all in parallel (one GPU thread each),
//! paying only the longest chain instead of the sum; dependent probes force
//! the recomputations into a sequence.
//!
//! # Costs
//!
//! - Worker: the fill is `memory_bytes / 32` hashes (once); the walk is
//!   `n_probes` hashes and memory reads.
//! - Coordinator: at most `n_checked · chunks_per_block` hashes, about half
//!   that on average. Chains need only be a few times longer than the k*
//!   below (a worker keeping nothing must be caught), so the planner's 512
//!   chunks and 64 checks cost about 2^14 hashes (2 ms) against the worker's
//!   `memory_bytes / 32`: a ratio of about 500 for 256 MiB and 10⁵ for
//!   64 GiB in hashes. Memory is the challenge whose check is least cheap,
//!   because checking a chunk means rebuilding its chain.
//!
//! # The time–memory trade-off, honestly
//!
//! A worker that keeps only every k-th chunk of each chain (1/k of the
//! memory) answers a step by rebuilding from the nearest kept chunk below:
//! (k − 1)/2 hashes on average. Over the walk that is `P · (k − 1)/2 · t`
//! more time, t being one sequential keyed hash (about 50–100 ns on a fast
//! core, [`CHEATER_HASH_NS`]), and the steps cannot overlap. The deadline
//! ([`probe_deadline_ms`]) allows the network allowance N, plus
//! [`STEP_ALLOWANCE_NS`] (a) per step, plus [`PROBE_MARGIN_MS`] (M). A
//! cheater next to the coordinator on a fast host spends almost none of it,
//! so all of it is slack: `S = N + M + P·a`. It is caught when
//! `P · (k − 1)/2 · t > S`, so the walk proves that at least `1/k*` of the
//! claimed memory is held, with `k* = 2S / (P·t) + 1`
//! ([`cheat_factor_caught`]). With t = 50 ns, a = 1 µs and M = 10 ms (P·a
//! rounded up to whole milliseconds, as the deadline is):
//!
//! | P (answer size)   | N = 20 ms | N = 100 ms |
//! |-------------------|-----------|------------|
//! | 2^12 (128 KiB)    | k* ≈ 343  | k* ≈ 1124  |
//! | 2^15 (1 MiB)      | k* ≈ 78   | k* ≈ 176   |
//! | 2^16 (2 MiB)      | k* ≈ 60   | k* ≈ 108   |
//!
//! However long the walk, k* stays above `2a/t + 1` = 41: the allowance per
//! step must cover a slow honest host, and a fast cheater turns it into
//! hashes. So one walk tells 16 GiB from 16 MiB, not 16 GiB from 8 GiB. What
//! would sharpen it: measuring each worker's own step time on join and
//! setting a from it (a near the honest time makes k* small), and a walk of
//! 2^24 steps committed by a Merkle root over its transcript and
//! spot-checked, so N stops mattering; neither is built here. A cheater
//! keeping only the block keys (that is, nothing: they follow from the seed)
//! has k = `chunks_per_block`, so blocks must be longer than k* or the walk
//! proves nothing at all. Memory that swaps to disk is caught by the same
//! deadline, since a disk read costs far more than the allowance.
//!
//! This crate fills host memory on the CPU. A GPU worker proving its
//! device memory must produce the same bytes in device memory with its own
//! kernel; the layout above is the whole specification.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::Seed;
use crate::draw::{self, Draw};

/// Bytes per chunk: one blake3 output.
pub const CHUNK_BYTES: usize = 32;
/// Shortest chain: shorter ones let a cheater keep nothing and rebuild any
/// chunk within the slack of any deadline.
pub const CHUNKS_PER_BLOCK_MIN: u32 = 1 << 8;
/// Longest chain: the coordinator may pay up to this many hashes per check
/// (about 0.3 s at 2^22).
pub const CHUNKS_PER_BLOCK_MAX: u32 = 1 << 22;
/// Largest memory a challenge may claim (1 TiB).
pub const MEMORY_BYTES_MAX: u64 = 1 << 40;
/// Most steps in one walk; the answer is 32 bytes per step (2 MiB here).
pub const PROBES_MAX: u32 = 1 << 16;
/// Largest answer a coordinator needs to accept (before framing overhead).
pub const ANSWER_BYTES_MAX: usize = PROBES_MAX as usize * CHUNK_BYTES;
/// Time allowed per step of the walk on top of the network allowance: one
/// keyed hash (100–300 ns on an ordinary core) and one read that misses
/// the cache and the TLB (100–200 ns). Every nanosecond of it beyond the
/// honest step is slack for a cheater (see the trade-off above), so it is
/// no larger than a slow honest host needs.
pub const STEP_ALLOWANCE_NS: u64 = 1_000;
/// Fixed allowance for the worker to start the walk and serialise the answer.
pub const PROBE_MARGIN_MS: u64 = 10;
/// Deadline for the fill as a multiple of its expected time at the claimed
/// hash rate (liveness only; see the module documentation).
pub const FILL_DEADLINE_MULTIPLE: f64 = 4.0;
/// Assumed time of one sequential 32-byte keyed blake3 on the fastest core
/// a cheater could use; the trade-off figures use it.
pub const CHEATER_HASH_NS: f64 = 50.0;

const BLOCK_CONTEXT: &str = "iog-trust memory block v1";
const WALK_CONTEXT: &str = "iog-trust memory walk v1";
const CHECK_CONTEXT: &str = "iog-trust memory check v1";

/// A memory challenge as it goes over the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryChallenge {
    pub seed: Seed,
    /// Bytes to fill; rounded down to whole blocks.
    pub memory_bytes: u64,
    /// Length of each hash chain; a power of two.
    pub chunks_per_block: u32,
    /// Steps of the probe walk.
    pub n_probes: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MemoryParamsError {
    #[error(
        "memory.chunks_per_block must be a power of two from {CHUNKS_PER_BLOCK_MIN} to {CHUNKS_PER_BLOCK_MAX}, got {0}"
    )]
    ChunksPerBlock(u32),
    #[error("memory.memory_bytes must be one block ({block_bytes} bytes) to {MEMORY_BYTES_MAX}, got {memory_bytes}")]
    MemoryBytes { memory_bytes: u64, block_bytes: u64 },
    #[error("memory.n_probes must be 1 to {PROBES_MAX}, got {0}")]
    Probes(u32),
    #[error("cannot allocate {0} bytes to fill")]
    Allocation(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MemoryCheckError {
    #[error("memory challenge is invalid: {0}")]
    Params(#[from] MemoryParamsError),
    #[error("answer holds {got} chunks, the walk has {want} steps")]
    ChunkCount { got: usize, want: usize },
    #[error("n_checked must be at least 1")]
    NothingChecked,
    #[error("step {step} answers the wrong chunk for block {block_idx}, chunk {chunk_idx}")]
    WrongChunk { step: u32, block_idx: u64, chunk_idx: u32 },
}

/// The chunks read at each step of the walk, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryAnswer {
    pub chunks: Vec<[u8; CHUNK_BYTES]>,
}

/// Where one step of the walk reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbePosition {
    pub block_idx: u64,
    pub chunk_idx: u32,
}

impl MemoryChallenge {
    pub fn validate(&self) -> Result<(), MemoryParamsError> {
        let per_block = self.chunks_per_block;
        if !per_block.is_power_of_two() || !(CHUNKS_PER_BLOCK_MIN..=CHUNKS_PER_BLOCK_MAX).contains(&per_block) {
            return Err(MemoryParamsError::ChunksPerBlock(per_block));
        }
        if self.memory_bytes < self.block_bytes() || self.memory_bytes > MEMORY_BYTES_MAX {
            return Err(MemoryParamsError::MemoryBytes {
                memory_bytes: self.memory_bytes,
                block_bytes: self.block_bytes(),
            });
        }
        if !(1..=PROBES_MAX).contains(&self.n_probes) {
            return Err(MemoryParamsError::Probes(self.n_probes));
        }
        Ok(())
    }

    pub fn block_bytes(&self) -> u64 {
        u64::from(self.chunks_per_block) * CHUNK_BYTES as u64
    }

    pub fn n_blocks(&self) -> u64 {
        self.memory_bytes / self.block_bytes()
    }

    /// Bytes actually filled: whole blocks.
    pub fn filled_bytes(&self) -> u64 {
        self.n_blocks() * self.block_bytes()
    }

    fn n_chunks(&self) -> u64 {
        self.n_blocks() * u64::from(self.chunks_per_block)
    }
}

fn block_key(seed: &Seed, block_idx: u64) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(BLOCK_CONTEXT);
    hasher.update(seed);
    hasher.update(&block_idx.to_le_bytes());
    *hasher.finalize().as_bytes()
}

fn next_chunk(key: &[u8; 32], previous: &[u8; CHUNK_BYTES]) -> [u8; CHUNK_BYTES] {
    *blake3::keyed_hash(key, previous).as_bytes()
}

/// Chunk `chunk_idx` of block `block_idx`, derived from the seed alone at a
/// cost of `chunk_idx + 1` sequential hashes. This is the coordinator's
/// check and the cheater's only way to answer without the memory.
pub fn chunk(seed: &Seed, block_idx: u64, chunk_idx: u32) -> [u8; CHUNK_BYTES] {
    let key = block_key(seed, block_idx);
    let mut current = [0u8; CHUNK_BYTES];
    for _ in 0..=chunk_idx {
        current = next_chunk(&key, &current);
    }
    current
}

/// The position step `step` of the walk reads, from the chunk read at the
/// previous step (all zeros before step 0).
pub fn probe_position(
    challenge: &MemoryChallenge,
    probe_seed: &Seed,
    step: u32,
    previous: &[u8; CHUNK_BYTES],
) -> ProbePosition {
    // The walk key is fixed for the whole walk; deriving it per step would
    // only add a hash to both sides.
    let key = walk_key(challenge, probe_seed);
    position_from(challenge, &key, step, previous)
}

fn walk_key(challenge: &MemoryChallenge, probe_seed: &Seed) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(WALK_CONTEXT);
    hasher.update(&challenge.seed);
    hasher.update(probe_seed);
    *hasher.finalize().as_bytes()
}

fn position_from(challenge: &MemoryChallenge, walk_key: &[u8; 32], step: u32, previous: &[u8; 32]) -> ProbePosition {
    let mut input = [0u8; 4 + CHUNK_BYTES];
    input[..4].copy_from_slice(&step.to_le_bytes());
    input[4..].copy_from_slice(previous);
    let digest = blake3::keyed_hash(walk_key, &input);
    let word = u64::from_le_bytes(digest.as_bytes()[..8].try_into().expect("8 of 32 bytes"));
    let idx = draw::below(word, challenge.n_chunks());
    let per_block = u64::from(challenge.chunks_per_block);
    ProbePosition { block_idx: idx / per_block, chunk_idx: (idx % per_block) as u32 }
}

/// The worker's filled memory.
#[derive(Debug)]
pub struct MemoryFill {
    challenge: MemoryChallenge,
    data: Vec<u8>,
}

/// The worker's first step: fills `filled_bytes` of host memory, blocks in
/// parallel. Costs `memory_bytes / 32` keyed hashes. Refuses an invalid
/// challenge, and reports an allocation failure instead of aborting.
pub fn fill(challenge: &MemoryChallenge) -> Result<MemoryFill, MemoryParamsError> {
    challenge.validate()?;
    let len = challenge.filled_bytes();
    let len_usize = usize::try_from(len).map_err(|_| MemoryParamsError::Allocation(len))?;
    let mut data = Vec::new();
    data.try_reserve_exact(len_usize).map_err(|_| MemoryParamsError::Allocation(len))?;
    data.resize(len_usize, 0);
    let block_bytes = challenge.block_bytes() as usize;
    data.par_chunks_mut(block_bytes).enumerate().for_each(|(block_idx, block)| {
        let key = block_key(&challenge.seed, block_idx as u64);
        let mut current = [0u8; CHUNK_BYTES];
        for slot in block.chunks_exact_mut(CHUNK_BYTES) {
            current = next_chunk(&key, &current);
            slot.copy_from_slice(&current);
        }
    });
    Ok(MemoryFill { challenge: challenge.clone(), data })
}

impl MemoryFill {
    fn read(&self, position: ProbePosition) -> [u8; CHUNK_BYTES] {
        let offset =
            (position.block_idx * self.challenge.block_bytes()) as usize + position.chunk_idx as usize * CHUNK_BYTES;
        self.data[offset..offset + CHUNK_BYTES].try_into().expect("a chunk is CHUNK_BYTES")
    }

    /// The walk: `n_probes` dependent reads. Costs one hash and one read
    /// per step.
    pub fn answer(&self, probe_seed: &Seed) -> MemoryAnswer {
        let key = walk_key(&self.challenge, probe_seed);
        let mut previous = [0u8; CHUNK_BYTES];
        let mut chunks = Vec::with_capacity(self.challenge.n_probes as usize);
        for step in 0..self.challenge.n_probes {
            previous = self.read(position_from(&self.challenge, &key, step, &previous));
            chunks.push(previous);
        }
        MemoryAnswer { chunks }
    }
}

/// The coordinator's check of an untrusted answer: `n_checked` steps drawn
/// from `check_seed` (drawn after the answer arrived; it never goes to the
/// worker), each rebuilt from the seed. Costs at most
/// `n_checked · chunks_per_block` hashes. A worker whose answer is wrong at
/// a fraction 1 − f of the steps passes with probability about `f^n_checked`.
pub fn check(
    challenge: &MemoryChallenge,
    probe_seed: &Seed,
    answer: &MemoryAnswer,
    check_seed: &Seed,
    n_checked: u32,
) -> Result<(), MemoryCheckError> {
    challenge.validate()?;
    let n_probes = challenge.n_probes;
    if answer.chunks.len() != n_probes as usize {
        return Err(MemoryCheckError::ChunkCount { got: answer.chunks.len(), want: n_probes as usize });
    }
    if n_checked == 0 {
        return Err(MemoryCheckError::NothingChecked);
    }
    let key = walk_key(challenge, probe_seed);
    for step in checked_steps(n_probes, check_seed, n_checked) {
        let previous = match step {
            0 => [0u8; CHUNK_BYTES],
            _ => answer.chunks[step as usize - 1],
        };
        let position = position_from(challenge, &key, step, &previous);
        if chunk(&challenge.seed, position.block_idx, position.chunk_idx) != answer.chunks[step as usize] {
            return Err(MemoryCheckError::WrongChunk {
                step,
                block_idx: position.block_idx,
                chunk_idx: position.chunk_idx,
            });
        }
    }
    Ok(())
}

/// `min(n_checked, n_probes)` distinct steps, by a partial Fisher–Yates
/// shuffle, in increasing order.
fn checked_steps(n_probes: u32, check_seed: &Seed, n_checked: u32) -> Vec<u32> {
    let mut steps: Vec<u32> = (0..n_probes).collect();
    let n_checked = n_checked.min(n_probes) as usize;
    let mut draw = Draw::new(CHECK_CONTEXT, &[check_seed]);
    for i in 0..n_checked {
        let j = i + draw.below((steps.len() - i) as u64) as usize;
        steps.swap(i, j);
    }
    steps.truncate(n_checked);
    steps.sort_unstable();
    steps
}

/// Expected time of the fill at `hashes_per_s`.
pub fn fill_expected_ms(challenge: &MemoryChallenge, hashes_per_s: f64) -> f64 {
    1000.0 * challenge.n_chunks() as f64 / hashes_per_s
}

/// Liveness deadline of the fill (it proves nothing; see the module docs).
pub fn fill_deadline_ms(fill_expected_ms: f64, network_ms: u64) -> u64 {
    (fill_expected_ms * FILL_DEADLINE_MULTIPLE).ceil() as u64 + network_ms
}

/// Deadline of the walk, counted from revealing the probe seed: the network
/// allowance, [`STEP_ALLOWANCE_NS`] per step and [`PROBE_MARGIN_MS`].
pub fn probe_deadline_ms(n_probes: u32, network_ms: u64) -> u64 {
    network_ms + (u64::from(n_probes) * STEP_ALLOWANCE_NS).div_ceil(1_000_000) + PROBE_MARGIN_MS
}

/// The smallest k for which a worker keeping every k-th chunk (1/k of the
/// memory) misses the deadline: `2·S / (P·t) + 1`, with S the slack in
/// milliseconds the cheater has and t its sequential hash time in
/// nanoseconds. If it exceeds `chunks_per_block`, the walk proves nothing.
pub fn cheat_factor_caught(n_probes: u32, slack_ms: f64, hash_ns: f64) -> f64 {
    2.0 * slack_ms * 1e6 / (f64::from(n_probes) * hash_ns) + 1.0
}
