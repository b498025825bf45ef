//! The hash puzzle: find m nonces whose blake3 hash with the seed starts with
//! d zero bits.
//!
//! # Protocol
//!
//! The coordinator sends a [`HashChallenge`] (a fresh seed, d and m); the
//! worker ([`solve`]) answers with m distinct nonces in increasing order
//! such that `blake3(seed ‖ nonce_le64)` has at least d leading zero bits;
//! the coordinator ([`check`]) hashes m times. The input is 40 bytes, one
//! blake3 compression, which is what a claimed hash rate counts.
//!
//! # Sizing and the deadline
//!
//! Each hash succeeds with probability 2^−d, so finding m solutions takes
//! `m · 2^d` hashes on average, and at a rate of h hashes per second the
//! time to the m-th solution is Erlang-distributed with shape m and mean
//! `m · 2^d / h`; its relative spread is `1/√m`. [`plan`] picks d and m in
//! 8..=16 so that the mean is within about 6 % of the target. The deadline
//! is [`DEADLINE_MULTIPLE`] times the mean plus the network allowance.
//!
//! An honest worker at exactly the claimed rate misses the deadline when
//! fewer than m solutions turn up within `c` times the mean, c the multiple:
//! `P(Poisson(m·c) < m)` ([`miss_probability`]; the Poisson count of
//! Bernoulli trials is exact to within 2^−d). At c = 2.5: m = 8 misses with
//! probability 7.8 · 10⁻⁴, m = 12 with 6.4 · 10⁻⁵, m = 16 with 5.5 · 10⁻⁶.
//!
//! # What it proves
//!
//! A worker whose true rate is a fraction r of the claim passes with
//! probability `P(Poisson(m·c·r) ≥ m)`: at c = 2.5 and m = 16, a device at
//! half the claim passes 84 % of the time, at a quarter 4.9 %. So one puzzle
//! proves a hash rate of about `1/c` of the claim (a device at `1/c` passes
//! about half the time), and repeated puzzles narrow that: the coordinator
//! can compare the sum of solve times over many puzzles with the claim. It says nothing about memory or int8 throughput, and, like
//! every challenge here, nothing about where the hashing ran: a worker can
//! relay the seed to a faster machine.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::Seed;

/// Most solutions one challenge may ask for.
pub const SOLUTIONS_MAX: u32 = 64;
/// Hardest difficulty accepted; 2^64 hashes is beyond any device.
pub const DIFFICULTY_BITS_MAX: u32 = 64;
/// Fewest solutions the planner asks for (it picks 8 to 16): the spread of
/// the time is `1/√m`, 35 % at 8.
pub const SOLUTIONS_PLAN_MIN: u32 = 8;
/// Deadline as a multiple of the expected time, before the network
/// allowance: an honest worker at the claimed rate misses it with
/// probability under 10⁻³ (see the module documentation).
pub const DEADLINE_MULTIPLE: f64 = 2.5;
/// Largest answer a coordinator needs to accept (before framing overhead).
pub const ANSWER_BYTES_MAX: usize = SOLUTIONS_MAX as usize * 8;
/// Nonces the solver tries per round across all cores, and per rayon task.
/// Rounds keep the result independent of the number of cores: the m
/// smallest solutions, whatever the thread count.
const ROUND_NONCES: u64 = 1 << 18;
const TASK_NONCES: u64 = 1 << 12;

/// A hash puzzle as it goes over the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashChallenge {
    pub seed: Seed,
    /// Leading zero bits (d) each solution's hash must have.
    pub difficulty_bits: u32,
    /// Solutions (m) to find.
    pub n_solutions: u32,
}

/// The nonces found, strictly increasing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashAnswer {
    pub nonces: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HashParamsError {
    #[error("hash.difficulty_bits must be at most {DIFFICULTY_BITS_MAX}, got {0}")]
    Difficulty(u32),
    #[error("hash.n_solutions must be 1 to {SOLUTIONS_MAX}, got {0}")]
    Solutions(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HashSolveError {
    #[error("hash challenge is invalid: {0}")]
    Params(#[from] HashParamsError),
    #[error("gave up after {hashes} hashes with {found} of {want} solutions; raise hashes_max if the claim allows it")]
    GaveUp { hashes: u64, found: usize, want: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HashCheckError {
    #[error("hash challenge is invalid: {0}")]
    Params(#[from] HashParamsError),
    #[error("answer holds {got} nonces, the challenge asks for {want}")]
    NonceCount { got: usize, want: usize },
    #[error("nonces must be strictly increasing; nonce {idx} ({nonce}) is not")]
    NotIncreasing { idx: usize, nonce: u64 },
    #[error("nonce {nonce} gives {zero_bits} leading zero bits, want {want}")]
    TooEasy { nonce: u64, zero_bits: u32, want: u32 },
}

impl HashChallenge {
    pub fn validate(&self) -> Result<(), HashParamsError> {
        if self.difficulty_bits > DIFFICULTY_BITS_MAX {
            return Err(HashParamsError::Difficulty(self.difficulty_bits));
        }
        if !(1..=SOLUTIONS_MAX).contains(&self.n_solutions) {
            return Err(HashParamsError::Solutions(self.n_solutions));
        }
        Ok(())
    }

    /// Mean hashes to find every solution: `m · 2^d`.
    pub fn expected_hashes(&self) -> f64 {
        f64::from(self.n_solutions) * 2f64.powi(self.difficulty_bits as i32)
    }
}

/// Leading zero bits of `blake3(seed ‖ nonce_le64)`.
pub fn leading_zero_bits(seed: &Seed, nonce: u64) -> u32 {
    let mut input = [0u8; 40];
    input[..32].copy_from_slice(seed);
    input[32..].copy_from_slice(&nonce.to_le_bytes());
    let digest = blake3::hash(&input);
    let bytes = digest.as_bytes();
    let high = u64::from_be_bytes(bytes[..8].try_into().expect("8 of 32 bytes"));
    if high != 0 {
        return high.leading_zeros();
    }
    64 + u64::from_be_bytes(bytes[8..16].try_into().expect("8 of 32 bytes")).leading_zeros()
}

/// The worker's answer: the m smallest solutions, searched in parallel.
/// Gives up after `hashes_max` hashes, which the worker sets from its own
/// claim so that a challenge harder than it agreed to cannot keep it busy.
pub fn solve(challenge: &HashChallenge, hashes_max: u64) -> Result<HashAnswer, HashSolveError> {
    challenge.validate()?;
    let want = challenge.n_solutions as usize;
    let mut found: Vec<u64> = Vec::new();
    let mut round_start = 0u64;
    while found.len() < want {
        if round_start >= hashes_max {
            return Err(HashSolveError::GaveUp { hashes: round_start, found: found.len(), want });
        }
        let round: Vec<u64> = (0..ROUND_NONCES / TASK_NONCES)
            .into_par_iter()
            .flat_map_iter(|task_idx| {
                let start = round_start + task_idx * TASK_NONCES;
                (start..start + TASK_NONCES)
                    .filter(|&nonce| leading_zero_bits(&challenge.seed, nonce) >= challenge.difficulty_bits)
            })
            .collect();
        found.extend(round);
        round_start += ROUND_NONCES;
    }
    found.sort_unstable();
    found.truncate(want);
    Ok(HashAnswer { nonces: found })
}

/// The coordinator's check of an untrusted answer: m hashes.
pub fn check(challenge: &HashChallenge, answer: &HashAnswer) -> Result<(), HashCheckError> {
    challenge.validate()?;
    let want = challenge.n_solutions as usize;
    if answer.nonces.len() != want {
        return Err(HashCheckError::NonceCount { got: answer.nonces.len(), want });
    }
    for (idx, pair) in answer.nonces.windows(2).enumerate() {
        if pair[1] <= pair[0] {
            return Err(HashCheckError::NotIncreasing { idx: idx + 1, nonce: pair[1] });
        }
    }
    for &nonce in &answer.nonces {
        let zero_bits = leading_zero_bits(&challenge.seed, nonce);
        if zero_bits < challenge.difficulty_bits {
            return Err(HashCheckError::TooEasy { nonce, zero_bits, want: challenge.difficulty_bits });
        }
    }
    Ok(())
}

/// The puzzle whose mean time at `hashes_per_s` is closest to `target_ms`
/// with m in [`SOLUTIONS_PLAN_MIN`]..=2·[`SOLUTIONS_PLAN_MIN`]: d is the
/// largest with `2^d · 8 ≤ h·T`, then m = round(h·T / 2^d). When h·T is
/// under 8 hashes, d = 0 and m = max(1, round(h·T)).
pub fn plan(seed: Seed, hashes_per_s: f64, target_ms: u64) -> HashChallenge {
    let total_hashes = hashes_per_s * target_ms as f64 / 1000.0;
    let min = f64::from(SOLUTIONS_PLAN_MIN);
    if total_hashes < min {
        return HashChallenge { seed, difficulty_bits: 0, n_solutions: (total_hashes.round() as u32).max(1) };
    }
    let difficulty_bits = ((total_hashes / min).log2().floor() as u32).min(DIFFICULTY_BITS_MAX);
    let n_solutions = (total_hashes / 2f64.powi(difficulty_bits as i32)).round() as u32;
    HashChallenge { seed, difficulty_bits, n_solutions: n_solutions.clamp(1, SOLUTIONS_MAX) }
}

/// Mean time to solve at `hashes_per_s`.
pub fn expected_ms(challenge: &HashChallenge, hashes_per_s: f64) -> f64 {
    1000.0 * challenge.expected_hashes() / hashes_per_s
}

/// [`DEADLINE_MULTIPLE`] times the mean plus the network allowance.
pub fn deadline_ms(expected_ms: f64, network_ms: u64) -> u64 {
    (expected_ms * DEADLINE_MULTIPLE).ceil() as u64 + network_ms
}

/// Probability that a worker hashing at `rate_fraction` of the claimed rate
/// has fewer than `n_solutions` solutions after `deadline_multiple` times
/// the mean time at the claimed rate: `P(Poisson(m·c·r) < m)`. With
/// `rate_fraction = 1` it is the chance an honest worker misses; with less,
/// one minus the chance a slower device passes.
pub fn miss_probability(n_solutions: u32, deadline_multiple: f64, rate_fraction: f64) -> f64 {
    let mean = f64::from(n_solutions) * deadline_multiple * rate_fraction;
    if n_solutions == 0 {
        return 0.0;
    }
    if mean <= 0.0 {
        return 1.0;
    }
    // Terms in log space: e^−x alone underflows for large x while the
    // terms near k = m do not. Sum the smaller tail: below the mean the
    // lower one, above it the upper one (which falls off geometrically), so
    // neither side loses its digits to a subtraction from 1.
    let ln_term = |k: u32, ln_factorial: f64| -mean + f64::from(k) * mean.ln() - ln_factorial;
    let mut ln_factorial = 0.0;
    if mean >= f64::from(n_solutions) {
        let mut lower = 0.0;
        for k in 0..n_solutions {
            if k > 0 {
                ln_factorial += f64::from(k).ln();
            }
            lower += ln_term(k, ln_factorial).exp();
        }
        return lower.min(1.0);
    }
    for k in 1..=n_solutions {
        ln_factorial += f64::from(k).ln();
    }
    let mut upper = 0.0;
    let mut k = n_solutions;
    loop {
        let term = ln_term(k, ln_factorial).exp();
        upper += term;
        // Beyond the mean each term is at most mean/(k+1) of the last, so
        // the rest is below term · r/(1 − r); stop when that is negligible.
        if term <= upper * f64::EPSILON || term == 0.0 {
            break;
        }
        k += 1;
        ln_factorial += f64::from(k).ln();
    }
    (1.0 - upper).max(0.0)
}
