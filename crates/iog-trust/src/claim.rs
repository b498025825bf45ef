//! Sizing challenges from what a device claims.
//!
//! A worker claims rates; the coordinator turns each into a challenge whose
//! honest time is a target, and a deadline that adds the network allowance
//! (round trip plus transfer of the answer, which the caller knows from its
//! measurements of the worker; see `iog-sched`'s Vivaldi coordinates).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::Seed;
use crate::compute::{self, ComputeChallenge};
use crate::memory::{self, MemoryChallenge};
use crate::puzzle::{self, HashChallenge};

/// Fastest int8 rate a claim may state: 10¹⁷ ops/s, fifty times the
/// fastest single accelerator of 2025.
pub const INT8_OPS_PER_S_MAX: f64 = 1e17;
/// Fastest hash rate a claim may state (blake3 compressions per second).
pub const HASHES_PER_S_MAX: f64 = 1e14;
/// What each challenge of a coordinator's round should take the claimed
/// device; a worker checks its GPUs against it at start.
pub const CHALLENGE_TARGET_MS: u64 = 250;
/// Shortest target; below it the network allowance dwarfs the work.
pub const TARGET_MS_MIN: u64 = 10;
/// Longest target: a challenge holds a device that could be earning.
pub const TARGET_MS_MAX: u64 = 10 * 60 * 1000;
/// Largest network allowance accepted.
pub const NETWORK_MS_MAX: u64 = 60_000;
/// Share of the claimed memory the planner fills: the worker's own process
/// and the operating system need the rest.
pub const MEMORY_FILL_NUMERATOR: u64 = 7;
pub const MEMORY_FILL_DENOMINATOR: u64 = 8;
/// How far the planned chain length exceeds k* (then rounded up to a power
/// of two). Chains need only be long enough that a worker keeping nothing
/// (k = chain length) is caught with room to spare; every chunk beyond that
/// costs the coordinator a hash per check and buys nothing.
pub const CHAIN_MARGIN: f64 = 4.0;
/// Steps of the planned walk: 3.1 s of step allowance (0.6–0.9 s of an
/// honest host's time), long enough that the network allowance adds little
/// to k* (see `memory`'s trade-off table), and 32 MiB the worker keeps
/// until it has opened the checked leaves.
pub const PROBES_PLAN: u32 = 1 << 20;
/// Steps the coordinator rebuilds: a walk wrong at 10 % of its steps passes
/// with probability 0.9^64 ≈ 0.1 %.
pub const CHECKED_PLAN: u32 = 64;

/// The int8 rate every hardware GPU is held to in its compute challenge,
/// run by the workers' wgpu kernel (`dot4I8Packed`, which GPUs since
/// about 2016 execute as one instruction): 10¹² ops/s. A GTX 1060's DP4A
/// peak is some 1.7 · 10¹³, an H100's some 1.3 · 10¹⁴ (on its integer
/// units, not its tensor cores, which WGSL cannot reach); two cores of
/// this project's CI machine do 1.7 · 10¹⁰ with the CPU kernel, a
/// 16-core desktop about 10¹¹. Models get rates of their own
/// ([`gpu_claim`]) once the kernel is measured on them; until then this
/// floor proves a device computes int8 products at a GPU's rate, not
/// which GPU it is (nor that it is not a CPU with int8 matrix units).
pub const GPU_INT8_OPS_PER_S_FLOOR: f64 = 1e12;
/// The rate a software adapter (Mesa's llvmpipe or lavapipe, SwiftShader,
/// Microsoft's WARP) is held to: it runs on the CPU, and does about
/// 3 · 10⁹ on this project's two-core CI machine.
pub const SOFTWARE_GPU_INT8_OPS_PER_S: f64 = 5e8;
/// Whether `model` is exactly the name a software adapter reports:
/// llvmpipe's and lavapipe's `llvmpipe (LLVM 15.0.6, 256 bits)`,
/// `SwiftShader Device (Subzero)` or `(LLVM …)`, WARP's `Microsoft Basic
/// Render Driver`. Exactly, because placement matches models as parts of
/// the name: `llvmpipe H100` must not be held to a software rate and
/// placed as an H100.
pub fn is_software_gpu(model: &str) -> bool {
    let version = |text: &str| !text.is_empty() && text.chars().all(|c| c.is_ascii_digit() || c == '.');
    if let Some(inner) = model.strip_prefix("llvmpipe (LLVM ").and_then(|rest| rest.strip_suffix(" bits)")) {
        return inner.split_once(", ").is_some_and(|(llvm, bits)| version(llvm) && version(bits));
    }
    if let Some(inner) = model.strip_prefix("SwiftShader Device (").and_then(|rest| rest.strip_suffix(')')) {
        return inner == "Subzero" || inner.strip_prefix("LLVM ").is_some_and(version);
    }
    model == "Microsoft Basic Render Driver"
}

/// What a GPU of `model` (as the worker reports it) is held to in a
/// compute challenge. Its hash rate (for hashing C and for its puzzle) is
/// one blake3 compression a second per 5 000 int8 ops claimed: 2 · 10⁸ at
/// the floor, a fraction of what GPUs hash. It proves no memory (GPU
/// memory has no challenge yet).
pub fn gpu_claim(model: &str) -> Claim {
    let int8_ops_per_s = if is_software_gpu(model) { SOFTWARE_GPU_INT8_OPS_PER_S } else { GPU_INT8_OPS_PER_S_FLOOR };
    Claim { int8_ops_per_s, memory_bytes: 0, hashes_per_s: int8_ops_per_s / GPU_OPS_PER_HASH }
}

/// int8 ops claimed per blake3 compression a second, for GPUs.
const GPU_OPS_PER_HASH: f64 = 5000.0;

/// What a worker says one device can do.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// Dense int8 throughput, a multiply-add counted as two ops (the
    /// vendors' TOPS times 10¹²).
    pub int8_ops_per_s: f64,
    /// Memory the device can fill.
    pub memory_bytes: u64,
    /// blake3 compressions per second over all cores.
    pub hashes_per_s: f64,
}

#[derive(Debug, Clone, PartialEq, Error)]
pub enum ClaimError {
    #[error("claim.int8_ops_per_s must be a number > 0 and <= {INT8_OPS_PER_S_MAX:e}, got {0}")]
    Int8OpsPerS(f64),
    #[error("claim.hashes_per_s must be a number > 0 and <= {HASHES_PER_S_MAX:e}, got {0}")]
    HashesPerS(f64),
    #[error("claim.memory_bytes must be {min} to {max}, got {got}")]
    MemoryBytes { got: u64, min: u64, max: u64 },
    #[error("target_ms must be {TARGET_MS_MIN} to {TARGET_MS_MAX}, got {0}")]
    TargetMs(u64),
    #[error("network_ms must be at most {NETWORK_MS_MAX}, got {0}")]
    NetworkMs(u64),
    #[error("the memory walk must have 1 to {max} steps, got {0}", max = memory::PROBES_MAX)]
    WalkSteps(u32),
}

/// A compute challenge with its timing.
#[derive(Debug, Clone, PartialEq)]
pub struct ComputePlan {
    pub challenge: ComputeChallenge,
    /// Honest time to the commitment at the claimed rates.
    pub expected_ms: f64,
    /// When the commitment must be in, from sending the challenge.
    pub deadline_ms: u64,
}

/// A memory challenge with its timing and what it can prove.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryPlan {
    pub challenge: MemoryChallenge,
    pub fill_expected_ms: f64,
    /// Liveness only: a slow fill proves nothing either way.
    pub fill_deadline_ms: u64,
    /// When the walk's commitment must be in, from revealing the probe seed.
    pub probe_deadline_ms: u64,
    /// Steps the coordinator should rebuild ([`memory::check`]'s `n_checked`).
    pub n_checked: u32,
    /// k*: a worker holding 1/k* of the memory or less misses the deadline
    /// even next to the coordinator ([`memory::cheat_factor_caught`] with the
    /// whole deadline as slack and [`memory::CHEATER_HASH_NS`]).
    pub cheat_factor_caught: f64,
}

/// A hash puzzle with its timing.
#[derive(Debug, Clone, PartialEq)]
pub struct HashPlan {
    pub challenge: HashChallenge,
    pub expected_ms: f64,
    pub deadline_ms: u64,
    /// Chance that an honest worker at exactly the claimed rate misses.
    pub miss_probability: f64,
}

fn check_timing(target_ms: u64, network_ms: u64) -> Result<(), ClaimError> {
    if !(TARGET_MS_MIN..=TARGET_MS_MAX).contains(&target_ms) {
        return Err(ClaimError::TargetMs(target_ms));
    }
    if network_ms > NETWORK_MS_MAX {
        return Err(ClaimError::NetworkMs(network_ms));
    }
    Ok(())
}

fn rate_ok(rate: f64, max: f64) -> bool {
    rate.is_finite() && rate > 0.0 && rate <= max
}

impl Claim {
    pub fn validate(&self) -> Result<(), ClaimError> {
        if !rate_ok(self.int8_ops_per_s, INT8_OPS_PER_S_MAX) {
            return Err(ClaimError::Int8OpsPerS(self.int8_ops_per_s));
        }
        if !rate_ok(self.hashes_per_s, HASHES_PER_S_MAX) {
            return Err(ClaimError::HashesPerS(self.hashes_per_s));
        }
        Ok(())
    }

    /// A matrix-product challenge of about `target_ms` at the claimed rates.
    /// n is the cube root of the work, rounded down to whole chunks and
    /// capped at [`compute::N_PLAN_MAX`]; more work than one product of
    /// that size holds goes into more products (up to
    /// [`compute::PRODUCTS_MAX`], beyond which the challenge is shorter
    /// than the target). Large n is preferred because hashing C costs 4
    /// bytes per n multiply-adds.
    pub fn plan_compute(&self, seed: Seed, target_ms: u64, network_ms: u64) -> Result<ComputePlan, ClaimError> {
        self.validate()?;
        check_timing(target_ms, network_ms)?;
        let ops = self.int8_ops_per_s * target_ms as f64 / 1000.0;
        let side = (ops / 2.0).cbrt();
        let chunk = f64::from(compute::CHUNK_ENTRIES);
        let side = if side >= chunk { (side / chunk).floor() * chunk } else { side.floor() };
        let n = (side as u32).clamp(compute::N_MIN, compute::N_PLAN_MAX);
        let per_product = 2.0 * f64::from(n).powi(3);
        let n_products = ((ops / per_product).round() as u32).clamp(1, compute::PRODUCTS_MAX);
        let challenge = ComputeChallenge { seed, n, n_products, n_samples: compute::SAMPLES_PLAN };
        let expected_ms = compute::expected_ms(&challenge, self.int8_ops_per_s, self.hashes_per_s);
        Ok(ComputePlan { deadline_ms: compute::deadline_ms(expected_ms, network_ms), expected_ms, challenge })
    }

    /// A memory challenge over 7/8 of the claimed memory with a walk of
    /// `n_probes` steps ([`PROBES_PLAN`] unless the caller knows better: a
    /// shorter walk tolerates a busier host and proves less). Chains are [`CHAIN_MARGIN`] times k* long, rounded up to a
    /// power of two within the memory module's limits, and shortened for a
    /// memory too small to hold one such block. When the network allowance
    /// is so large that k* exceeds the longest chain, the plan still comes
    /// back, and its `cheat_factor_caught` above `chunks_per_block` says the
    /// walk proves nothing.
    pub fn plan_memory(&self, seed: Seed, network_ms: u64, n_probes: u32) -> Result<MemoryPlan, ClaimError> {
        self.validate()?;
        if network_ms > NETWORK_MS_MAX {
            return Err(ClaimError::NetworkMs(network_ms));
        }
        if !(1..=memory::PROBES_MAX).contains(&n_probes) {
            return Err(ClaimError::WalkSteps(n_probes));
        }
        let fill_bytes = self.memory_bytes / MEMORY_FILL_DENOMINATOR * MEMORY_FILL_NUMERATOR;
        let chunk_bytes = memory::CHUNK_BYTES as u64;
        let min_block_bytes = u64::from(memory::CHUNKS_PER_BLOCK_MIN) * chunk_bytes;
        if fill_bytes < min_block_bytes || self.memory_bytes > memory::MEMORY_BYTES_MAX {
            return Err(ClaimError::MemoryBytes {
                got: self.memory_bytes,
                min: min_block_bytes.div_ceil(MEMORY_FILL_NUMERATOR) * MEMORY_FILL_DENOMINATOR,
                max: memory::MEMORY_BYTES_MAX,
            });
        }
        // k* depends only on the walk's length and deadline, not on the
        // chain length, so it is known before the chain is chosen.
        let probe_deadline_ms = memory::probe_deadline_ms(n_probes, network_ms);
        let cheat_factor_caught =
            memory::cheat_factor_caught(n_probes, probe_deadline_ms as f64, memory::CHEATER_HASH_NS);
        let wanted = (cheat_factor_caught * CHAIN_MARGIN).ceil().min(f64::from(memory::CHUNKS_PER_BLOCK_MAX)) as u32;
        let mut chunks_per_block =
            wanted.next_power_of_two().clamp(memory::CHUNKS_PER_BLOCK_MIN, memory::CHUNKS_PER_BLOCK_MAX);
        while u64::from(chunks_per_block) * chunk_bytes > fill_bytes {
            chunks_per_block /= 2;
        }
        let challenge = MemoryChallenge { seed, memory_bytes: fill_bytes, chunks_per_block, n_probes };
        let fill_expected_ms = memory::fill_expected_ms(&challenge, self.hashes_per_s);
        Ok(MemoryPlan {
            fill_deadline_ms: memory::fill_deadline_ms(fill_expected_ms, network_ms),
            fill_expected_ms,
            probe_deadline_ms,
            n_checked: CHECKED_PLAN,
            cheat_factor_caught,
            challenge,
        })
    }

    /// A hash puzzle of about `target_ms` at the claimed hash rate.
    pub fn plan_hash(&self, seed: Seed, target_ms: u64, network_ms: u64) -> Result<HashPlan, ClaimError> {
        self.validate()?;
        check_timing(target_ms, network_ms)?;
        let challenge = puzzle::plan(seed, self.hashes_per_s, target_ms);
        let expected_ms = puzzle::expected_ms(&challenge, self.hashes_per_s);
        Ok(HashPlan {
            deadline_ms: puzzle::deadline_ms(expected_ms, network_ms),
            miss_probability: puzzle::miss_probability(challenge.n_solutions, puzzle::DEADLINE_MULTIPLE, 1.0),
            expected_ms,
            challenge,
        })
    }
}
