//! The compute challenge: a seeded int8 matrix product, committed by a
//! Merkle root and checked at random entries.
//!
//! # Protocol
//!
//! 1. The coordinator sends a [`ComputeChallenge`]: a fresh seed, the size n,
//!    the number of products and the number of entries it will ask for.
//! 2. The worker generates, for each product t, A_t and B_t (n×n, entries
//!    i8) from the seed, computes C_t = A_t·B_t exactly in i32 ([`commit`]),
//!    and answers with the Merkle root over all of them
//!    ([`ComputeCommitment`]) before the deadline.
//! 3. Only then does the coordinator reveal a second seed; both sides derive
//!    from it and the root the positions of `n_samples` entries
//!    ([`sample_positions`]).
//! 4. The worker opens each position ([`ComputeWork::answer`]): the chunk of
//!    the row holding the entry and three Merkle proofs (chunk in row, row in
//!    product, product in commitment).
//! 5. The coordinator ([`check`]) walks each proof up to the root and
//!    recomputes the entry as the dot product of one row of A_t and one column
//!    of B_t, generated from the seed alone.
//!
//! Entries are i8 and sums exact in i32, as int8 tensor cores compute them,
//! so the answer is bit-exact on every device and there is no tolerance to
//! argue about.
//!
//! # Commitment layout
//!
//! A row of C is split into chunks of [`CHUNK_ENTRIES`] entries (the last
//! one shorter when n is not a multiple); a row's hash is the Merkle root
//! over its chunks' leaf hashes; a product's root is the Merkle root over its
//! row hashes; the commitment is the Merkle root over the product roots.
//! Leaves are chunks rather than whole rows so that one opening costs about
//! 1 KiB of entries plus at most 32 hashes (2 KiB in all at the largest
//! sizes) instead of a whole row (64 KiB at n = 16384). Rows stay a level of
//! their own so the worker keeps only n row hashes per product (32 bytes per
//! row, 256 KiB per product at n = 8192): when asked, it recomputes the one
//! row it needs (n² multiply-adds) rather than storing C.
//!
//! # Costs
//!
//! - Worker: `n_products · n³` multiply-adds (`2 · n_products · n³` "ops" as
//!   vendors count TOPS) plus hashing C once (`4 · n²` bytes per product),
//!   then `n_samples · n²` multiply-adds to recompute the opened rows.
//! - Coordinator: per sample, `2n` generated entries, one length-n dot
//!   product and at most 32 + 16 compressions of hashing: `O(n_samples · n)`.
//!   The ratio worker/coordinator in operations is about
//!   `n_products · n² / n_samples`: 3 · 10⁴ at n = 1024, s = 32 and 2 · 10⁶
//!   at n = 8192. In time on one CPU it is lower (640 measured at n = 1024,
//!   see the crate documentation), since each checked entry pays a fixed
//!   few microseconds of hashing while the worker's multiply-adds are
//!   vectorised.
//!
//! # What it proves
//!
//! If the worker computed only a fraction f of the entries correctly (or
//! committed to anything else for the rest), each sampled entry is right
//! with probability f, independently, because the positions are drawn after
//! the root is fixed. The cheat goes unnoticed with probability `f^s`: with
//! s = 32, 0.9^32 ≈ 3.4 %, 0.8^32 ≈ 0.08 %, 0.5^32 ≈ 2 · 10⁻¹⁰.
//!
//! The deadline then proves throughput, but only up to its slack: a root in
//! time means at least `ops / (deadline − round trip)` ops per second were
//! available, which is `1 / COMMIT_DEADLINE_MULTIPLE` of the claim when the
//! network allowance is small against the work. It does not prove the work
//! ran on the worker's own device: a worker can relay the seed to a faster
//! machine and pass. It does not prove the device stays available afterwards;
//! that is what repeated challenges at random times are for.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::Seed;
use crate::draw::Draw;
use crate::matrix::{self, Matrix};
use crate::merkle::{self, Hash, MerkleError, MerkleTree};

/// Smallest matrix size; smaller products are over before they can be timed.
pub const N_MIN: u32 = 16;
/// Largest matrix size. Exactness needs `n · 2^14 < 2^31` (n < 131072); the
/// cap is set by memory instead: A and B take n² bytes each (256 MiB each
/// at 16384) and a worker must refuse a challenge that would exhaust it.
pub const N_MAX: u32 = 16384;
/// Most products in one challenge; with [`N_PLAN_MAX`] that is about
/// 4.5 · 10¹⁵ ops, over 2 s of a 2000-TOPS device, and the worker keeps
/// 32 bytes per row of every product (1 GiB at 4096 · 8192).
pub const PRODUCTS_MAX: u32 = 4096;
/// Most entries the coordinator may ask to open.
pub const SAMPLES_MAX: u32 = 256;
/// Entries of C per Merkle leaf.
pub const CHUNK_ENTRIES: u32 = 256;
/// Longest Merkle proof of one opening at the limits above:
/// log2(N_MAX / CHUNK_ENTRIES) + log2(N_MAX) + log2(PRODUCTS_MAX) levels.
pub const OPENING_HASHES_MAX: usize = 6 + 14 + 12;
/// Largest encoded size of one opening, entries and hashes, before framing.
pub const OPENING_BYTES_MAX: usize = CHUNK_ENTRIES as usize * 4 + OPENING_HASHES_MAX * 32;
/// Largest answer a coordinator needs to accept (before framing overhead);
/// a transport may refuse anything larger unread.
pub const ANSWER_BYTES_MAX: usize = SAMPLES_MAX as usize * OPENING_BYTES_MAX;
/// Largest n the planner picks: A and B are 64 MiB each, and the hashing of
/// C per multiply-add (4 bytes per n) is small enough to leave the time to
/// the product.
pub const N_PLAN_MAX: u32 = 8192;
/// Entries the planner asks to open: a worker with 90 % of the entries right
/// passes with probability 0.9^32 ≈ 3.4 %.
pub const SAMPLES_PLAN: u32 = 32;
/// Deadline for the commitment as a multiple of the expected time at the
/// claimed rates, before the network allowance is added: kernels run below
/// peak, and the slack is what a device slower than claimed can hide in.
pub const COMMIT_DEADLINE_MULTIPLE: f64 = 1.5;
/// Bytes of C that one blake3 compression covers, to turn a claimed hash
/// rate into the time to hash C.
const BYTES_PER_COMPRESSION: f64 = 64.0;
const SAMPLE_CONTEXT: &str = "iog-trust compute samples v1";

/// A compute challenge as it goes over the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeChallenge {
    pub seed: Seed,
    /// Rows and columns of every matrix.
    pub n: u32,
    /// Independent products C_t = A_t·B_t, each from its own part of the seed.
    pub n_products: u32,
    /// Entries the coordinator will ask to open once the root is in.
    pub n_samples: u32,
}

/// A challenge outside the limits; a worker refuses it rather than try.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ComputeParamsError {
    #[error("compute.n must be {N_MIN} to {N_MAX}, got {0}")]
    N(u32),
    #[error("compute.n_products must be 1 to {PRODUCTS_MAX}, got {0}")]
    Products(u32),
    #[error("compute.n_samples must be 1 to {SAMPLES_MAX}, got {0}")]
    Samples(u32),
}

/// Why the coordinator rejects an answer. Every variant is a failed
/// challenge; none is a reason to panic.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ComputeCheckError {
    #[error("compute challenge is invalid: {0}")]
    Params(#[from] ComputeParamsError),
    #[error("answer opens {got} entries, the challenge asks for {want}")]
    OpeningCount { got: usize, want: usize },
    #[error("opening {sample_idx} holds {got} entries, its chunk has {want}")]
    ChunkLength { sample_idx: usize, got: usize, want: usize },
    #[error("opening {sample_idx}: {level} proof: {source}")]
    Proof { sample_idx: usize, level: &'static str, source: MerkleError },
    #[error("opening {sample_idx} does not lead to the committed root")]
    RootMismatch { sample_idx: usize },
    #[error("opening {sample_idx} at {position:?} holds {got}, the product is {want}")]
    WrongEntry { sample_idx: usize, position: EntryPosition, got: i32, want: i32 },
}

/// What the worker sends once every product is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeCommitment {
    pub root: Hash,
}

/// One entry of one product.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryPosition {
    pub product_idx: u32,
    pub row_idx: u32,
    pub col_idx: u32,
}

/// The chunk holding one asked entry, with the proofs up to the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Opening {
    /// Entries `k · CHUNK_ENTRIES ..` of the row, k = col_idx / CHUNK_ENTRIES.
    pub chunk: Vec<i32>,
    /// From the chunk's leaf to the row hash.
    pub chunk_proof: Vec<Hash>,
    /// From the row hash to the product root.
    pub row_proof: Vec<Hash>,
    /// From the product root to the commitment.
    pub product_proof: Vec<Hash>,
}

/// The worker's openings, in the order of [`sample_positions`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeAnswer {
    pub openings: Vec<Opening>,
}

impl ComputeChallenge {
    pub fn validate(&self) -> Result<(), ComputeParamsError> {
        if !(N_MIN..=N_MAX).contains(&self.n) {
            return Err(ComputeParamsError::N(self.n));
        }
        if !(1..=PRODUCTS_MAX).contains(&self.n_products) {
            return Err(ComputeParamsError::Products(self.n_products));
        }
        if !(1..=SAMPLES_MAX).contains(&self.n_samples) {
            return Err(ComputeParamsError::Samples(self.n_samples));
        }
        Ok(())
    }

    /// Integer operations of the products, counting a multiply-add as two
    /// as vendors' TOPS figures do.
    pub fn ops(&self) -> f64 {
        2.0 * f64::from(self.n_products) * f64::from(self.n).powi(3)
    }

    /// blake3 compressions to hash every C once.
    pub fn commit_hashes(&self) -> f64 {
        f64::from(self.n_products) * f64::from(self.n).powi(2) * 4.0 / BYTES_PER_COMPRESSION
    }

    fn chunks_per_row(&self) -> u32 {
        self.n.div_ceil(CHUNK_ENTRIES)
    }

    fn chunk_len(&self, chunk_idx: u32) -> usize {
        let start = chunk_idx * CHUNK_ENTRIES;
        (self.n - start).min(CHUNK_ENTRIES) as usize
    }
}

/// Expected time to the commitment at the claimed rates: the products at
/// `int8_ops_per_s` plus hashing C at `hashes_per_s` compressions.
pub fn expected_ms(challenge: &ComputeChallenge, int8_ops_per_s: f64, hashes_per_s: f64) -> f64 {
    1000.0 * (challenge.ops() / int8_ops_per_s + challenge.commit_hashes() / hashes_per_s)
}

/// Deadline for the commitment, counted from sending the challenge:
/// [`COMMIT_DEADLINE_MULTIPLE`] times the expected time plus the network
/// allowance (round trip and transfer).
pub fn deadline_ms(expected_ms: f64, network_ms: u64) -> u64 {
    (expected_ms * COMMIT_DEADLINE_MULTIPLE).ceil() as u64 + network_ms
}

/// The row of A_t that entry `(t, i, ·)` needs, generated from the seed alone.
pub fn a_row(seed: &Seed, n: u32, product_idx: u32, row_idx: u32) -> Vec<i8> {
    let mut row = vec![0i8; n as usize];
    let key = matrix::matrix_key(seed, product_idx, Matrix::A);
    matrix::fill_entries(key, u64::from(row_idx) * u64::from(n), &mut row);
    row
}

/// The column of B_t that entry `(t, ·, j)` needs, generated from the seed alone.
pub fn b_column(seed: &Seed, n: u32, product_idx: u32, col_idx: u32) -> Vec<i8> {
    let mut column = vec![0i8; n as usize];
    let key = matrix::matrix_key(seed, product_idx, Matrix::B);
    matrix::fill_entries(key, u64::from(col_idx) * u64::from(n), &mut column);
    column
}

/// The positions to open, from the challenge, the committed root and the
/// seed the coordinator reveals after receiving the root. Including the root
/// means even a coordinator that reused a sample seed would not let a
/// worker pick its commitment to suit known positions.
pub fn sample_positions(challenge: &ComputeChallenge, root: &Hash, sample_seed: &Seed) -> Vec<EntryPosition> {
    let mut draw = Draw::new(SAMPLE_CONTEXT, &[&challenge.seed, root, sample_seed]);
    let n = u64::from(challenge.n);
    let per_product = n * n;
    let n_entries = per_product * u64::from(challenge.n_products);
    (0..challenge.n_samples)
        .map(|_| {
            let idx = draw.below(n_entries);
            let within = idx % per_product;
            EntryPosition {
                product_idx: (idx / per_product) as u32,
                row_idx: (within / n) as u32,
                col_idx: (within % n) as u32,
            }
        })
        .collect()
}

/// What the worker keeps between the commitment and the answer.
#[derive(Debug, Clone)]
pub struct ComputeWork {
    challenge: ComputeChallenge,
    /// Row hashes of every product: 32 bytes per row.
    row_hashes: Vec<Vec<Hash>>,
    products: MerkleTree,
}

/// One product of a challenge, as a kernel on another device needs it:
/// entry `idx` of A (stored by rows) is byte `idx % 8` of
/// `mix64(key_a + (idx / 8 + 1) · γ)` (SplitMix64's output function and
/// increment), and likewise of B (stored by columns) with `key_b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProductSpec {
    pub n: u32,
    pub key_a: u64,
    pub key_b: u64,
}

impl ComputeChallenge {
    /// Product `product_idx` of this challenge.
    pub fn product(&self, product_idx: u32) -> ProductSpec {
        ProductSpec {
            n: self.n,
            key_a: matrix::matrix_key(&self.seed, product_idx, Matrix::A),
            key_b: matrix::matrix_key(&self.seed, product_idx, Matrix::B),
        }
    }
}

/// The hashes of every row of one product, computed on the CPU (rayon over
/// bands of rows): the work a GPU kernel must match bit for bit. A row's
/// hash is the Merkle root over its chunks' leaf hashes, each leaf the
/// little-endian bytes of [`CHUNK_ENTRIES`] entries of C.
pub fn product_row_hashes(product: &ProductSpec) -> Vec<Hash> {
    let n = product.n as usize;
    let a = matrix::generate(product.key_a, n);
    let b = matrix::generate(product.key_b, n);
    matrix::product_rows_map(&a, &b, n, row_hash)
}

/// The worker's first step: computes every product on the CPU and commits
/// to it. Costs `n_products · n³` multiply-adds; memory is A and B of one
/// product (2n² bytes) plus the row hashes.
pub fn commit(challenge: &ComputeChallenge) -> Result<ComputeWork, ComputeParamsError> {
    challenge.validate()?;
    let row_hashes = (0..challenge.n_products).map(|idx| product_row_hashes(&challenge.product(idx))).collect();
    commit_rows(challenge, row_hashes)
}

/// The commitment over row hashes computed elsewhere (a GPU kernel), one
/// list of n per product in order. The openings recompute their rows on
/// the CPU, so a kernel that got a row wrong is caught by the coordinator
/// like any other wrong root, never hidden by this side.
pub fn commit_rows(
    challenge: &ComputeChallenge,
    row_hashes: Vec<Vec<Hash>>,
) -> Result<ComputeWork, ComputeParamsError> {
    challenge.validate()?;
    assert!(
        row_hashes.len() == challenge.n_products as usize
            && row_hashes.iter().all(|rows| rows.len() == challenge.n as usize),
        "commit_rows takes n row hashes for each of the challenge's products"
    );
    let product_roots = row_hashes.iter().map(|rows| merkle::root(rows).expect("n >= N_MIN rows")).collect::<Vec<_>>();
    let products = MerkleTree::new(product_roots).expect("n_products >= 1");
    Ok(ComputeWork { challenge: challenge.clone(), row_hashes, products })
}

fn chunk_leaf(chunk: &[i32]) -> Hash {
    let mut bytes = [0u8; CHUNK_ENTRIES as usize * 4];
    for (slot, entry) in bytes.chunks_exact_mut(4).zip(chunk) {
        slot.copy_from_slice(&entry.to_le_bytes());
    }
    merkle::leaf_hash(&bytes[..chunk.len() * 4])
}

fn chunk_leaves(row: &[i32]) -> Vec<Hash> {
    row.chunks(CHUNK_ENTRIES as usize).map(chunk_leaf).collect()
}

fn row_hash(row: &[i32]) -> Hash {
    merkle::root(&chunk_leaves(row)).expect("a row has at least one chunk")
}

impl ComputeWork {
    pub fn commitment(&self) -> ComputeCommitment {
        ComputeCommitment { root: self.products.root() }
    }

    /// Opens the positions drawn from `sample_seed`. Recomputes each asked
    /// row (n² multiply-adds) and regenerates B of each product asked about.
    pub fn answer(&self, sample_seed: &Seed) -> ComputeAnswer {
        let challenge = &self.challenge;
        let n = challenge.n as usize;
        let positions = sample_positions(challenge, &self.products.root(), sample_seed);
        let mut b_cache: Option<(u32, Vec<i8>)> = None;
        let mut openings = Vec::with_capacity(positions.len());
        for position in positions {
            let b = match b_cache.take() {
                Some((product_idx, b)) if product_idx == position.product_idx => b,
                _ => matrix::generate(matrix::matrix_key(&challenge.seed, position.product_idx, Matrix::B), n),
            };
            let a = a_row(&challenge.seed, challenge.n, position.product_idx, position.row_idx);
            let mut row = vec![0i32; n];
            matrix::product_row(&a, &b, n, &mut row);
            b_cache = Some((position.product_idx, b));

            let chunk_idx = position.col_idx / CHUNK_ENTRIES;
            let chunks = MerkleTree::new(chunk_leaves(&row)).expect("a row has at least one chunk");
            let rows =
                MerkleTree::new(self.row_hashes[position.product_idx as usize].clone()).expect("n >= N_MIN rows");
            let start = (chunk_idx * CHUNK_ENTRIES) as usize;
            openings.push(Opening {
                chunk: row[start..start + challenge.chunk_len(chunk_idx)].to_vec(),
                chunk_proof: chunks.proof(chunk_idx as usize).expect("chunk index within the row"),
                row_proof: rows.proof(position.row_idx as usize).expect("row index within the product"),
                product_proof: self
                    .products
                    .proof(position.product_idx as usize)
                    .expect("product index within the challenge"),
            });
        }
        ComputeAnswer { openings }
    }
}

/// The coordinator's check of an untrusted answer. Costs, per sample, one
/// row of A and one column of B generated (2n entries), a dot product of
/// length n, and about 16 + 32 blake3 compressions for the chunk and proofs.
pub fn check(
    challenge: &ComputeChallenge,
    commitment: &ComputeCommitment,
    sample_seed: &Seed,
    answer: &ComputeAnswer,
) -> Result<(), ComputeCheckError> {
    challenge.validate()?;
    let positions = sample_positions(challenge, &commitment.root, sample_seed);
    if answer.openings.len() != positions.len() {
        return Err(ComputeCheckError::OpeningCount { got: answer.openings.len(), want: positions.len() });
    }
    for (sample_idx, (position, opening)) in positions.iter().zip(&answer.openings).enumerate() {
        let chunk_idx = position.col_idx / CHUNK_ENTRIES;
        let want_len = challenge.chunk_len(chunk_idx);
        if opening.chunk.len() != want_len {
            return Err(ComputeCheckError::ChunkLength { sample_idx, got: opening.chunk.len(), want: want_len });
        }
        let proof_error = |level| move |source| ComputeCheckError::Proof { sample_idx, level, source };
        let row = merkle::root_from_proof(
            &chunk_leaf(&opening.chunk),
            u64::from(chunk_idx),
            u64::from(challenge.chunks_per_row()),
            &opening.chunk_proof,
        )
        .map_err(proof_error("chunk"))?;
        let product =
            merkle::root_from_proof(&row, u64::from(position.row_idx), u64::from(challenge.n), &opening.row_proof)
                .map_err(proof_error("row"))?;
        let root = merkle::root_from_proof(
            &product,
            u64::from(position.product_idx),
            u64::from(challenge.n_products),
            &opening.product_proof,
        )
        .map_err(proof_error("product"))?;
        if root != commitment.root {
            return Err(ComputeCheckError::RootMismatch { sample_idx });
        }
        let a = a_row(&challenge.seed, challenge.n, position.product_idx, position.row_idx);
        let b = b_column(&challenge.seed, challenge.n, position.product_idx, position.col_idx);
        let want = matrix::dot(&a, &b);
        let got = opening.chunk[(position.col_idx % CHUNK_ENTRIES) as usize];
        if got != want {
            return Err(ComputeCheckError::WrongEntry { sample_idx, position: *position, got, want });
        }
    }
    Ok(())
}
