//! The matrices of the compute challenge and the CPU kernel that multiplies
//! them.
//!
//! Entries come from a counter-based generator: entry `idx` of a matrix is
//! byte `idx % 8` of `mix64(key + (idx / 8 + 1) · γ)`, the SplitMix64
//! output function, with a 64-bit key per matrix drawn by blake3 from the
//! challenge seed. Any entry costs one multiply-xor-shift round, so the
//! coordinator generates one row of A and one column of B without the rest,
//! and a GPU kernel can generate a tile in registers. The generator needs no
//! cryptographic strength: the worker knows the seed anyway; what matters is
//! that the matrices exist only once the seed is known and have no structure
//! (low rank, repeated rows) that would make the product cheaper than n³.
//!
//! A is stored by rows (`A[i][k]` is entry `i·n + k`) and B by columns
//! (`B[k][j]` is entry `j·n + k`), so every entry of C is a dot product of two
//! contiguous runs of bytes on both sides.

use rayon::prelude::*;

use crate::Seed;

const MATRIX_CONTEXT: &str = "iog-trust compute matrix v1";
/// The SplitMix64 increment, 2^64 divided by the golden ratio.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
const ENTRIES_PER_WORD: u64 = 8;
/// Rows of C one rayon task computes; together with [`TILE_COLUMNS`] this
/// keeps a tile of B (`TILE_COLUMNS · n` bytes, 1 MiB at n = 8192) hot in the
/// cache while every row of the band passes over it.
const BAND_ROWS: usize = 16;
const TILE_COLUMNS: usize = 128;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matrix {
    A,
    B,
}

/// The generator key of matrix A or B of product `product_idx`.
pub(crate) fn matrix_key(seed: &Seed, product_idx: u32, matrix: Matrix) -> u64 {
    let mut hasher = blake3::Hasher::new_derive_key(MATRIX_CONTEXT);
    hasher.update(seed);
    hasher.update(&product_idx.to_le_bytes());
    hasher.update(&[matrix as u8]);
    let mut key = [0u8; 8];
    hasher.finalize_xof().fill(&mut key);
    u64::from_le_bytes(key)
}

fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn word(key: u64, word_idx: u64) -> u64 {
    mix64(key.wrapping_add(word_idx.wrapping_add(1).wrapping_mul(GAMMA)))
}

/// Fills `out` with entries `start..start + out.len()` of the matrix.
pub(crate) fn fill_entries(key: u64, start: u64, out: &mut [i8]) {
    let mut current = word(key, start / ENTRIES_PER_WORD);
    for (idx, entry) in (start..).zip(out.iter_mut()) {
        if idx.is_multiple_of(ENTRIES_PER_WORD) {
            current = word(key, idx / ENTRIES_PER_WORD);
        }
        *entry = (current >> (8 * (idx % ENTRIES_PER_WORD))) as u8 as i8;
    }
}

/// A whole matrix in its storage order (A by rows, B by columns).
pub(crate) fn generate(key: u64, n: usize) -> Vec<i8> {
    let mut entries = vec![0i8; n * n];
    entries.par_chunks_mut(n).enumerate().for_each(|(line_idx, line)| fill_entries(key, (line_idx * n) as u64, line));
    entries
}

/// The exact dot product. With |entry| ≤ 128 each term is at most 2^14, so
/// n ≤ 2^16 terms stay within i32 (the crate caps n far lower).
pub(crate) fn dot(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
}

/// One row of C: `a_row · B`, with B stored by columns.
pub(crate) fn product_row(a_row: &[i8], b_columns: &[i8], n: usize, out: &mut [i32]) {
    for (j, entry) in out.iter_mut().enumerate() {
        *entry = dot(a_row, &b_columns[j * n..][..n]);
    }
}

/// Computes C = A·B band by band in parallel and hands each finished row of
/// C to `per_row`, which turns it into a value kept in place of the row
/// (the compute challenge keeps the row's hash), so C is never held whole.
pub(crate) fn product_rows_map<T, F>(a_rows: &[i8], b_columns: &[i8], n: usize, per_row: F) -> Vec<T>
where
    T: Send + Default + Clone,
    F: Fn(&[i32]) -> T + Sync,
{
    let mut kept = vec![T::default(); n];
    kept.par_chunks_mut(BAND_ROWS).enumerate().for_each(|(band_idx, kept_band)| {
        let first_row = band_idx * BAND_ROWS;
        let rows = kept_band.len();
        let mut band = vec![0i32; rows * n];
        for tile_start in (0..n).step_by(TILE_COLUMNS) {
            let tile_end = (tile_start + TILE_COLUMNS).min(n);
            for r in 0..rows {
                let a_row = &a_rows[(first_row + r) * n..][..n];
                let c_row = &mut band[r * n..][..n];
                for (j, entry) in c_row.iter_mut().enumerate().take(tile_end).skip(tile_start) {
                    *entry = dot(a_row, &b_columns[j * n..][..n]);
                }
            }
        }
        for (r, slot) in kept_band.iter_mut().enumerate() {
            *slot = per_row(&band[r * n..][..n]);
        }
    });
    kept
}
