//! The nonce search itself, split over rayon in fixed chunks.

use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::hash::spec::{FOUND_MAX, HashAlgorithm};

/// Nonces per unit of parallel work: large enough to amortise scheduling,
/// small enough to balance two to a hundred cores.
const CHUNK_NONCES: u64 = 1 << 14;

/// The hash of `data || nonce.to_le_bytes()`.
pub fn hash_nonce(algorithm: HashAlgorithm, data: &[u8], nonce: u64) -> [u8; 32] {
    match algorithm {
        HashAlgorithm::Blake3 => {
            let mut hasher = blake3::Hasher::new();
            hasher.update(data);
            hasher.update(&nonce.to_le_bytes());
            *hasher.finalize().as_bytes()
        }
        HashAlgorithm::Sha256d => {
            let first = Sha256::new_with_prefix(data).chain_update(nonce.to_le_bytes()).finalize();
            Sha256::digest(first).into()
        }
    }
}

/// How many leading bits of the hash (read as a big-endian number) are zero.
pub fn leading_zero_bits(hash: &[u8; 32]) -> u32 {
    let mut bits = 0;
    for byte in hash {
        bits += byte.leading_zeros();
        if *byte != 0 {
            break;
        }
    }
    bits
}

/// The first [`FOUND_MAX`] nonces of `nonce_start..nonce_start + nonce_count`
/// whose hash has `difficulty_bits` leading zero bits, in order, and how
/// many qualify in all, searched on the CPU: the twin GPU kernels are held
/// to, and what they fall back on when a batch finds more than they keep.
/// The range must not pass `u64::MAX`.
pub fn search_range(
    algorithm: HashAlgorithm,
    data: &[u8],
    nonce_start: u64,
    nonce_count: u64,
    difficulty_bits: u32,
) -> crate::HashFinds {
    let found = search(algorithm, data, nonce_start, nonce_count, difficulty_bits);
    crate::HashFinds { nonces: found.nonces.into_iter().map(|(nonce, _)| nonce).collect(), count: found.count }
}

/// What a search found.
pub(crate) struct Found {
    /// The first [`FOUND_MAX`] qualifying nonces and hashes, in nonce order.
    pub nonces: Vec<(u64, [u8; 32])>,
    /// How many qualified in all, kept or not.
    pub count: u64,
}

/// Searches `nonce_count` nonces from `nonce_start`; the caller has checked
/// that the range does not pass `u64::MAX`.
pub(crate) fn search(
    algorithm: HashAlgorithm,
    data: &[u8],
    nonce_start: u64,
    nonce_count: u64,
    difficulty_bits: u32,
) -> Found {
    let n_chunks = nonce_count.div_ceil(CHUNK_NONCES);
    let chunks: Vec<Found> = (0..n_chunks)
        .into_par_iter()
        .map(|chunk_idx| {
            let offset = chunk_idx * CHUNK_NONCES;
            let length = CHUNK_NONCES.min(nonce_count - offset);
            scan(algorithm, data, nonce_start + offset, length, difficulty_bits)
        })
        .collect();
    let mut found = Found { nonces: Vec::new(), count: 0 };
    for chunk in chunks {
        found.count += chunk.count;
        let room = FOUND_MAX as usize - found.nonces.len();
        found.nonces.extend(chunk.nonces.into_iter().take(room));
    }
    found
}

/// Tests `length` consecutive nonces from `start` on one thread.
fn scan(algorithm: HashAlgorithm, data: &[u8], start: u64, length: u64, difficulty_bits: u32) -> Found {
    let mut found = Found { nonces: Vec::new(), count: 0 };
    let mut keep = |nonce: u64, hash: [u8; 32]| {
        // Only the first 8 bytes matter for up to 64 difficulty bits.
        let head = u64::from_be_bytes(hash[..8].try_into().expect("a hash has 32 bytes"));
        if head.leading_zeros() >= difficulty_bits {
            found.count += 1;
            if found.nonces.len() < FOUND_MAX as usize {
                found.nonces.push((nonce, hash));
            }
        }
    };
    match algorithm {
        HashAlgorithm::Blake3 => {
            // One buffer with the nonce rewritten in place: BLAKE3 of a short
            // message is a single compression, so setup would dominate.
            let mut message = Vec::with_capacity(data.len() + 8);
            message.extend_from_slice(data);
            message.extend_from_slice(&[0; 8]);
            for nonce in (0..length).map(|i| start + i) {
                message[data.len()..].copy_from_slice(&nonce.to_le_bytes());
                keep(nonce, *blake3::hash(&message).as_bytes());
            }
        }
        HashAlgorithm::Sha256d => {
            // The prefix's state is computed once and cloned per nonce.
            let prefix = Sha256::new_with_prefix(data);
            for nonce in (0..length).map(|i| start + i) {
                let first = prefix.clone().chain_update(nonce.to_le_bytes()).finalize();
                keep(nonce, Sha256::digest(first).into());
            }
        }
    }
    found
}
