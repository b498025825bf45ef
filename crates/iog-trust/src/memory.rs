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
//!    walks `n_probes` steps ([`MemoryFill::walk`]): the position of step
//!    r is drawn from the probe seed, r and the chunk read at step r − 1
//!    ([`probe_position`]), so the positions appear one at a time and only
//!    to whoever holds the previous chunk. The steps of leaf ℓ (every
//!    [`STEPS_PER_LEAF`] steps make a leaf of the walk's Merkle tree) draw
//!    their positions with a key bound to ℓ's left siblings in that tree,
//!    which the worker keeps as it goes ([`merkle::Frontier`]). It commits
//!    to the walk by the tree's root ([`MemoryCommitment`]); the clock
//!    stops when the root arrives.
//! 3. The coordinator reveals a check seed, which picks `n_checked` steps
//!    ([`checked_steps`]). The worker opens the leaves holding each checked
//!    step and the step before it ([`MemoryWalk::open`]). The coordinator
//!    ([`check`]) verifies the openings against the root, derives each
//!    checked step's position from the previous chunk and the leaf's key
//!    (from the left siblings in the leaf's own proof) and rebuilds the
//!    chunk there from the seed.
//!
//! The walk is a change from sending P independent positions: independent
//! probes let a cheater recompute them all in parallel (one GPU thread each),
//! paying only the longest chain instead of the sum; dependent probes force
//! the recomputations into a sequence. Committing to the walk instead of
//! sending it keeps the answer small (about 210 KiB of JSON for 64 checks,
//! whatever the walk's length), so the walk can be long enough that the
//! network allowance stops mattering (see the trade-off below).
//!
//! # Costs
//!
//! - Worker: the fill is `memory_bytes / 32` hashes (once); the walk is
//!   `n_probes` hashes and memory reads, plus hashing the 32 · `n_probes`
//!   bytes it read into the tree and a leaf key every [`STEPS_PER_LEAF`]
//!   steps.
//! - Coordinator: at most `n_checked · chunks_per_block` hashes, about half
//!   that on average, plus about `n_checked` Merkle proofs. Chains need
//!   only be a few times longer than the k* below (a worker keeping nothing
//!   must be caught), so the planner's 1024 chunks and 64 checks cost about
//!   2^15 hashes (4 ms) against the worker's `memory_bytes / 32`: a ratio
//!   of about 250 for 256 MiB and 6 · 10⁴ for 64 GiB in hashes. Memory is
//!   the challenge whose check is least cheap, because checking a chunk
//!   means rebuilding its chain.
//!
//! # The time–memory trade-off, honestly
//!
//! A worker that keeps only every k-th chunk of each chain (1/k of the
//! memory) answers a step by rebuilding from the nearest kept chunk below:
//! (k − 1)/2 hashes on average ([`SparseFill`] is that worker). Over the
//! walk that is `P · (k − 1)/2 · t` more time, t being one sequential keyed
//! hash (about 50–100 ns on a fast core, [`CHEATER_HASH_NS`]), and the steps
//! cannot overlap (see "Why the walk cannot be split" below). The deadline ([`probe_deadline_ms`]) allows the network
//! allowance N, plus [`STEP_ALLOWANCE_NS`] (a) per step, plus
//! [`PROBE_MARGIN_MS`] (M). A cheater next to the coordinator on a fast
//! host spends almost none of it, so all of it is slack: `S = N + M + P·a`.
//! It is caught when `P · (k − 1)/2 · t > S`, so the walk proves that at
//! least `1/k*` of the claimed memory is held, with `k* = 2S / (P·t) + 1`
//! ([`cheat_factor_caught`]). With t = 50 ns, a = 3 µs and M = 10 ms (P·a
//! rounded up to whole milliseconds, as the deadline is):
//!
//! | P (steps)          | N = 20 ms | N = 200 ms | N = 1 s   |
//! |--------------------|-----------|------------|-----------|
//! | 2^15               | k* ≈ 158  | k* ≈ 378   | k* ≈ 1355 |
//! | 2^18               | k* ≈ 126  | k* ≈ 153   | k* ≈ 275  |
//! | 2^20 (the planner) | k* ≈ 122  | k* ≈ 129   | k* ≈ 160  |
//!
//! However long the walk, k* stays above `2a/t + 1` = 121: the allowance per
//! step must cover a slow honest host, and a fast cheater turns it into
//! hashes. So the planned walk tells 16 GiB from 64 MiB (a worker holding
//! a 129th of its claim is caught over a 200 ms network allowance), not
//! 16 GiB from 8 GiB. On an ordinary core t is nearer 100 ns, which halves
//! k*: on the two-core host above, a worker keeping a 64th of 256 MiB took
//! 4.3 s over a 3.4 s deadline and one keeping a 16th passed. What would
//! sharpen it: measuring each worker's own step time on join and setting a
//! from it (a near the honest time makes k* small); that is not built. A
//! cheater keeping only the block keys (that is, nothing: they follow from
//! the seed) has k = `chunks_per_block`, so blocks must be longer than k* or
//! the walk proves nothing at all. Memory that swaps to disk is caught by
//! the same deadline, since a disk read costs far more than the allowance.
//!
//! # Why the walk cannot be split
//!
//! If each step depended only on the step before it, a cheater with m
//! cores could cut the walk into m pieces and compute them at once,
//! starting each piece from any chunk it liked: only the m − 1 joins would
//! be wrong, and 64 checks of 2^20 steps would land on one with
//! probability about 64·m / 2^20. Against m cores k* above would grow m
//! times; against a GPU's threads the walk would prove almost nothing.
//!
//! So the steps of each leaf draw their positions with a key bound to the
//! leaf's left siblings in the walk's tree: the roots of the complete
//! subtrees that together cover every earlier leaf. Nobody knows them
//! before every earlier step is final, and the coordinator reads them from
//! the proof of the very leaf it opens. A piece computed before its
//! predecessors were done was keyed wrongly throughout, so every checked
//! step in it fails, not only its first (in the spirit of Cohen and
//! Pietrzak's proofs of sequential work). What parallelism is left lies
//! inside a leaf: a cheater may start a leaf's later steps from a made-up
//! chunk and compute them beside the earlier ones, but each such join is
//! one step in [`STEPS_PER_LEAF`] (8), so one check catches a leaf split in
//! two with probability 1/8 and 64 checks pass it with (7/8)^64 ≈ 2 · 10⁻⁴
//! (`tests/memory.rs` measures both). Within the walk as a whole, the
//! cheater's speed-up from more cores is thus at most about two, at that
//! risk.
//!
//! This crate fills host memory on the CPU. A GPU worker proving its
//! device memory must produce the same bytes in device memory with its own
//! kernel; the layout above is the whole specification.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::Seed;
use crate::draw::{self, Draw};
use crate::merkle::{self, Frontier, Hash, MerkleTree};

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
/// Most steps in one walk. The worker keeps what it read (32 bytes a
/// step, 128 MiB here) until the coordinator has its openings.
pub const PROBES_MAX: u32 = 1 << 22;
/// Steps under one leaf of the walk's Merkle tree. A cheater may split a
/// leaf's steps between cores (see "Why the walk cannot be split"), and
/// each split leaves a join that a checked step lands on with probability
/// at least 1 / `STEPS_PER_LEAF`; fewer steps a leaf costs the worker a
/// tree hash more often. An opening carries a whole leaf (256 bytes).
pub const STEPS_PER_LEAF: u32 = 8;
/// Most steps a check may open (each opens up to two leaves): the planner's
/// 64, whose largest answer (128 leaves of a 2^22-step walk) stays under
/// 1 MiB of JSON.
pub const CHECKED_MAX: u32 = 64;
/// Time allowed per step of the walk on top of the network allowance: one
/// keyed hash (100–300 ns on an ordinary core), one read that misses the
/// cache and the TLB (100–300 ns over many GiB), and the step's share of
/// hashing the walk into its tree and keying its leaves. Measured honest
/// steps on a two-core x86-64 host take 0.6–0.85 µs
/// (`examples/challenge_costs.rs`), so this leaves a loaded or slow host,
/// or one missing the TLB over many GiB, three to five times that. Every nanosecond of
/// it beyond the honest step is slack for a cheater (see the trade-off
/// above).
pub const STEP_ALLOWANCE_NS: u64 = 3_000;
/// Fixed allowance for the worker to start the walk and serialise the answer.
pub const PROBE_MARGIN_MS: u64 = 10;
/// Deadline for the fill as a multiple of its expected time at the claimed
/// hash rate (liveness only; see the module documentation).
pub const FILL_DEADLINE_MULTIPLE: f64 = 4.0;
/// Assumed time of one sequential 32-byte keyed blake3 on the fastest core
/// a cheater could use; the trade-off figures use it.
pub const CHEATER_HASH_NS: f64 = 50.0;

const BLOCK_CONTEXT: &str = "iog-trust memory block v1";
const WALK_CONTEXT: &str = "iog-trust memory walk v2";
const CHECK_CONTEXT: &str = "iog-trust memory check v1";
/// Sets the leaf keys apart from anything else keyed by the walk key.
const LEAF_KEY_TAG: &[u8] = b"leaf";

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
    #[error("n_checked must be 1 to {CHECKED_MAX}, got {0}")]
    Checked(u32),
    #[error("cannot allocate {0} bytes to fill")]
    Allocation(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MemoryCheckError {
    #[error("memory challenge is invalid: {0}")]
    Params(#[from] MemoryParamsError),
    #[error("answer opens {got} leaves, the check asks for {want}")]
    OpeningCount { got: usize, want: usize },
    #[error("opening {idx} is of leaf {got}, the check asks for leaf {want}")]
    WrongLeaf { idx: usize, got: u32, want: u32 },
    #[error("leaf {leaf_idx} holds {got} chunks, want {want}")]
    LeafLength { leaf_idx: u32, got: usize, want: usize },
    #[error("leaf {leaf_idx} does not lead to the committed root: {detail}")]
    BadProof { leaf_idx: u32, detail: String },
    #[error("step {step} answers the wrong chunk for block {block_idx}, chunk {chunk_idx}")]
    WrongChunk { step: u32, block_idx: u64, chunk_idx: u32 },
}

/// What the worker sends when its walk is done: the root of a Merkle tree
/// whose leaf i hashes the chunks read at steps `i · STEPS_PER_LEAF` up to
/// the next leaf's first step (the last leaf may be shorter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryCommitment {
    pub root: Hash,
}

/// One leaf of the walk with its proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryOpening {
    pub leaf_idx: u32,
    /// The chunks read at the leaf's steps, in order.
    pub chunks: Vec<[u8; CHUNK_BYTES]>,
    /// Sibling hashes from the leaf up to the root.
    pub proof: Vec<Hash>,
}

/// The leaves the check seed asks for, in increasing order of leaf.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemoryAnswer {
    pub openings: Vec<MemoryOpening>,
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

    /// Leaves of the walk's tree.
    pub fn n_leaves(&self) -> u32 {
        self.n_probes.div_ceil(STEPS_PER_LEAF)
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

/// The key the steps of one leaf draw their positions with: the walk's key
/// bound to the leaf's left siblings in the walk's Merkle tree (from the
/// leaf upward), that is, to every earlier leaf. See "Why the walk cannot
/// be split" in the module documentation.
fn leaf_key<'a>(walk_key: &[u8; 32], left_siblings: impl Iterator<Item = &'a Hash>) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(walk_key);
    hasher.update(LEAF_KEY_TAG);
    for sibling in left_siblings {
        hasher.update(sibling);
    }
    *hasher.finalize().as_bytes()
}

fn walk_key(challenge: &MemoryChallenge, probe_seed: &Seed) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key(WALK_CONTEXT);
    hasher.update(&challenge.seed);
    hasher.update(probe_seed);
    *hasher.finalize().as_bytes()
}

/// The position step `step` reads, from its leaf's key and the chunk read
/// at the step before (all zeros before step 0).
fn position_from(challenge: &MemoryChallenge, leaf_key: &[u8; 32], step: u32, previous: &[u8; 32]) -> ProbePosition {
    let mut input = [0u8; 4 + CHUNK_BYTES];
    input[..4].copy_from_slice(&step.to_le_bytes());
    input[4..].copy_from_slice(previous);
    let digest = blake3::keyed_hash(leaf_key, &input);
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

    /// The walk: `n_probes` dependent reads, one hash and one read per
    /// step, and the tree over what was read, built as the walk goes. The
    /// fill may be dropped once this returns.
    pub fn walk(&self, probe_seed: &Seed) -> MemoryWalk {
        walk_with(&self.challenge, probe_seed, |_, position| self.read(position))
    }

    /// The walk split as a cheater with several cores might split it (see
    /// [`WalkSplit`]); for the tests that show such a walk is caught.
    pub fn walk_split(&self, probe_seed: &Seed, split: WalkSplit) -> MemoryWalk {
        walk_split(&self.challenge, probe_seed, split, |_, position| self.read(position))
    }
}

/// A worker that keeps only every `keep_every`-th chunk of each chain and
/// rebuilds the rest when the walk reads them: it holds about
/// `1 / keep_every` of the memory it claims. It answers correctly, only
/// slower; the probe deadline is what catches it. Here to measure the
/// trade-off (`examples/challenge_costs.rs`) and for the tests that show a
/// worker claiming more memory than it has is caught.
#[derive(Debug)]
pub struct SparseFill {
    challenge: MemoryChallenge,
    keep_every: u32,
    /// Per block, the kept chunks: indices 0, k, 2k, …
    kept: Vec<[u8; CHUNK_BYTES]>,
    kept_per_block: usize,
}

impl SparseFill {
    /// Fills like [`fill`] but keeps every `keep_every`-th chunk (at least 1).
    pub fn new(challenge: &MemoryChallenge, keep_every: u32) -> Result<SparseFill, MemoryParamsError> {
        challenge.validate()?;
        let keep_every = keep_every.max(1);
        let kept_per_block = challenge.chunks_per_block.div_ceil(keep_every) as usize;
        let n_blocks = usize::try_from(challenge.n_blocks()).map_err(|_| MemoryParamsError::Allocation(u64::MAX))?;
        let n_kept = n_blocks.checked_mul(kept_per_block).ok_or(MemoryParamsError::Allocation(u64::MAX))?;
        let mut kept = Vec::new();
        kept.try_reserve_exact(n_kept).map_err(|_| MemoryParamsError::Allocation((n_kept * CHUNK_BYTES) as u64))?;
        kept.resize(n_kept, [0u8; CHUNK_BYTES]);
        kept.par_chunks_mut(kept_per_block).enumerate().for_each(|(block_idx, slots)| {
            let key = block_key(&challenge.seed, block_idx as u64);
            let mut current = [0u8; CHUNK_BYTES];
            for chunk_idx in 0..challenge.chunks_per_block {
                current = next_chunk(&key, &current);
                if chunk_idx % keep_every == 0 {
                    slots[(chunk_idx / keep_every) as usize] = current;
                }
            }
        });
        Ok(SparseFill { challenge: challenge.clone(), keep_every, kept, kept_per_block })
    }

    /// Bytes actually held.
    pub fn held_bytes(&self) -> u64 {
        (self.kept.len() * CHUNK_BYTES) as u64
    }

    fn read(&self, position: ProbePosition) -> [u8; CHUNK_BYTES] {
        let kept_idx = position.chunk_idx / self.keep_every;
        let mut current = self.kept[position.block_idx as usize * self.kept_per_block + kept_idx as usize];
        let key = block_key(&self.challenge.seed, position.block_idx);
        for _ in kept_idx * self.keep_every..position.chunk_idx {
            current = next_chunk(&key, &current);
        }
        current
    }

    /// The same walk as [`MemoryFill::walk`], rebuilding what it did not keep.
    pub fn walk(&self, probe_seed: &Seed) -> MemoryWalk {
        walk_with(&self.challenge, probe_seed, |_, position| self.read(position))
    }
}

/// The walk over any memory: `read` gets each step and its position and
/// returns the chunk read there. [`MemoryFill::walk`] reads its fill;
/// tests read anything they like.
pub fn walk_with(
    challenge: &MemoryChallenge,
    probe_seed: &Seed,
    read: impl FnMut(u32, ProbePosition) -> [u8; CHUNK_BYTES],
) -> MemoryWalk {
    walk_split(challenge, probe_seed, WalkSplit::default(), read)
}

/// How a cheater with several cores might split the walk to finish sooner
/// (tests use it to show the split is caught).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkSplit {
    /// Runs of whole leaves computed at once; all but the first start from
    /// a made-up chunk and without the earlier leaves' subtree roots.
    pub n_pieces: u32,
    /// Each leaf's second half starts from a made-up chunk, so its two
    /// halves could be computed at once.
    pub split_leaves: bool,
}

impl Default for WalkSplit {
    /// No split: the honest walk.
    fn default() -> WalkSplit {
        WalkSplit { n_pieces: 1, split_leaves: false }
    }
}

/// The walk, split as `split` says (see [`WalkSplit`]).
pub fn walk_split(
    challenge: &MemoryChallenge,
    probe_seed: &Seed,
    split: WalkSplit,
    mut read: impl FnMut(u32, ProbePosition) -> [u8; CHUNK_BYTES],
) -> MemoryWalk {
    let n_pieces = split.n_pieces.max(1);
    let key = walk_key(challenge, probe_seed);
    let n_leaves = challenge.n_leaves();
    let leaves_per_piece = n_leaves.div_ceil(n_pieces);
    let mut previous = [0u8; CHUNK_BYTES];
    let mut chunks = Vec::with_capacity(challenge.n_probes as usize);
    let mut leaves = Vec::with_capacity(n_leaves as usize);
    let mut frontier = Frontier::default();
    // What a piece other than the first starts from: it cannot know the
    // frontier or the chunk its predecessor ends with.
    let mut guessed = Frontier::default();
    for leaf_idx in 0..n_leaves {
        let piece_start = leaf_idx > 0 && leaf_idx % leaves_per_piece == 0;
        if piece_start {
            previous = [0xAA; CHUNK_BYTES];
            guessed = Frontier::default();
        }
        let own = if leaf_idx >= leaves_per_piece { &guessed } else { &frontier };
        let leaf_key = leaf_key(&key, own.left_siblings());
        for step in leaf_steps(challenge.n_probes, leaf_idx) {
            if split.split_leaves && step % STEPS_PER_LEAF == STEPS_PER_LEAF / 2 {
                previous = [0x55; CHUNK_BYTES];
            }
            previous = read(step, position_from(challenge, &leaf_key, step, &previous));
            chunks.push(previous);
        }
        let leaf = leaf_hash(&chunks[leaf_steps(challenge.n_probes, leaf_idx).start as usize..]);
        leaves.push(leaf);
        frontier.push(leaf);
        guessed.push(leaf);
    }
    let tree = MerkleTree::new(leaves).expect("a valid challenge walks at least one step");
    MemoryWalk { chunks, tree }
}

fn leaf_hash(chunks: &[[u8; CHUNK_BYTES]]) -> Hash {
    merkle::leaf_hash(chunks.as_flattened())
}

/// A finished walk: what was read at each step and the tree over it.
#[derive(Debug)]
pub struct MemoryWalk {
    chunks: Vec<[u8; CHUNK_BYTES]>,
    tree: MerkleTree,
}

impl MemoryWalk {
    pub fn commitment(&self) -> MemoryCommitment {
        MemoryCommitment { root: self.tree.root() }
    }

    /// Opens the leaves [`opened_leaves`] names for this check seed.
    pub fn open(&self, check_seed: &Seed, n_checked: u32) -> MemoryAnswer {
        let n_probes = self.chunks.len() as u32;
        let openings = opened_leaves(n_probes, check_seed, n_checked)
            .into_iter()
            .map(|leaf_idx| {
                let steps = leaf_steps(n_probes, leaf_idx);
                MemoryOpening {
                    leaf_idx,
                    chunks: self.chunks[steps.start as usize..steps.end as usize].to_vec(),
                    proof: self.tree.proof(leaf_idx as usize).expect("opened leaves are in the tree"),
                }
            })
            .collect();
        MemoryAnswer { openings }
    }
}

fn leaf_steps(n_probes: u32, leaf_idx: u32) -> std::ops::Range<u32> {
    let start = leaf_idx * STEPS_PER_LEAF;
    start..(start + STEPS_PER_LEAF).min(n_probes)
}

/// The leaves an answer must open: those holding each checked step and the
/// step before it, in increasing order without repeats.
pub fn opened_leaves(n_probes: u32, check_seed: &Seed, n_checked: u32) -> Vec<u32> {
    let mut leaves: Vec<u32> = checked_steps(n_probes, check_seed, n_checked)
        .into_iter()
        .flat_map(|step| [step.saturating_sub(1) / STEPS_PER_LEAF, step / STEPS_PER_LEAF])
        .collect();
    leaves.dedup();
    leaves
}

/// The coordinator's check of an untrusted answer. `check_seed` was drawn
/// after the commitment arrived; it picks `n_checked` steps, each rebuilt
/// from the seed. Costs at most `n_checked · chunks_per_block` hashes and
/// up to `2 · n_checked` Merkle proofs (about `n_checked`: a step and the
/// one before it mostly share a leaf). A worker whose walk is wrong at a
/// fraction 1 − f of the steps passes with probability about `f^n_checked`.
/// Every count and length is checked before any hashing.
pub fn check(
    challenge: &MemoryChallenge,
    probe_seed: &Seed,
    commitment: &MemoryCommitment,
    check_seed: &Seed,
    n_checked: u32,
    answer: &MemoryAnswer,
) -> Result<(), MemoryCheckError> {
    challenge.validate()?;
    if !(1..=CHECKED_MAX).contains(&n_checked) {
        return Err(MemoryParamsError::Checked(n_checked).into());
    }
    let n_probes = challenge.n_probes;
    let want_leaves = opened_leaves(n_probes, check_seed, n_checked);
    if answer.openings.len() != want_leaves.len() {
        return Err(MemoryCheckError::OpeningCount { got: answer.openings.len(), want: want_leaves.len() });
    }
    for (idx, (opening, &want)) in answer.openings.iter().zip(&want_leaves).enumerate() {
        if opening.leaf_idx != want {
            return Err(MemoryCheckError::WrongLeaf { idx, got: opening.leaf_idx, want });
        }
        let want_len = leaf_steps(n_probes, want).len();
        if opening.chunks.len() != want_len {
            return Err(MemoryCheckError::LeafLength { leaf_idx: want, got: opening.chunks.len(), want: want_len });
        }
    }
    let n_leaves = u64::from(challenge.n_leaves());
    for opening in &answer.openings {
        let leaf = leaf_hash(&opening.chunks);
        let bad_proof = |detail: String| MemoryCheckError::BadProof { leaf_idx: opening.leaf_idx, detail };
        let root = merkle::root_from_proof(&leaf, u64::from(opening.leaf_idx), n_leaves, &opening.proof)
            .map_err(|err| bad_proof(err.to_string()))?;
        if root != commitment.root {
            return Err(bad_proof("the root differs".to_owned()));
        }
    }
    let opened_chunk = |step: u32| -> [u8; CHUNK_BYTES] {
        let leaf_idx = step / STEPS_PER_LEAF;
        let opening = &answer.openings[want_leaves.binary_search(&leaf_idx).expect("opened above")];
        opening.chunks[(step % STEPS_PER_LEAF) as usize]
    };
    let key = walk_key(challenge, probe_seed);
    for step in checked_steps(n_probes, check_seed, n_checked) {
        let previous = match step {
            0 => [0u8; CHUNK_BYTES],
            _ => opened_chunk(step - 1),
        };
        let leaf_idx = step / STEPS_PER_LEAF;
        let opening = &answer.openings[want_leaves.binary_search(&leaf_idx).expect("opened above")];
        let left = merkle::left_siblings(u64::from(leaf_idx), n_leaves, &opening.proof)
            .expect("the proof's length was checked above");
        let position = position_from(challenge, &leaf_key(&key, left.iter()), step, &previous);
        if chunk(&challenge.seed, position.block_idx, position.chunk_idx) != opened_chunk(step) {
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
pub fn checked_steps(n_probes: u32, check_seed: &Seed, n_checked: u32) -> Vec<u32> {
    let n_checked = n_checked.min(n_probes) as usize;
    // A sparse shuffle: only the swapped positions are stored, so a walk of
    // millions of steps costs n_checked entries, not n_probes.
    let mut swapped: std::collections::HashMap<u32, u32> = std::collections::HashMap::new();
    let mut draw = Draw::new(CHECK_CONTEXT, &[check_seed]);
    let mut steps = Vec::with_capacity(n_checked);
    for i in 0..n_checked as u32 {
        let j = i + draw.below(u64::from(n_probes - i)) as u32;
        let at_j = *swapped.get(&j).unwrap_or(&j);
        let at_i = *swapped.get(&i).unwrap_or(&i);
        swapped.insert(j, at_i);
        steps.push(at_j);
    }
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
