//! Sizing from a claim: challenges within their limits, honest times near
//! the target, deadlines above them, bad claims refused with the fix.

use iog_trust::claim::{self, Claim, ClaimError};
use iog_trust::{compute, memory, puzzle};
use proptest::prelude::*;

const GIB: u64 = 1 << 30;

/// About an H100: 1979 dense int8 TOPS, 80 GB, and a GPU blake3 rate.
const GPU: Claim = Claim { int8_ops_per_s: 1.979e15, memory_bytes: 80 * GIB, hashes_per_s: 2e10 };
/// About a two-core laptop.
const CPU: Claim = Claim { int8_ops_per_s: 5e10, memory_bytes: 8 * GIB, hashes_per_s: 2e7 };

#[test]
fn compute_plans_for_a_gpu_and_a_cpu() {
    let gpu = GPU.plan_compute([1; 32], 2000, 100).unwrap();
    assert_eq!(gpu.challenge.n, compute::N_PLAN_MAX);
    assert!(gpu.challenge.n_products > 1000, "{:?}", gpu.challenge);
    assert!(gpu.challenge.validate().is_ok());
    // The products themselves take the target; hashing C adds to it.
    let product_ms = gpu.challenge.ops() / GPU.int8_ops_per_s * 1000.0;
    assert!((product_ms / 2000.0 - 1.0).abs() < 0.01, "{product_ms}");
    assert!(gpu.expected_ms >= product_ms);
    assert_eq!(gpu.deadline_ms, (gpu.expected_ms * compute::COMMIT_DEADLINE_MULTIPLE).ceil() as u64 + 100);

    let cpu = CPU.plan_compute([1; 32], 2000, 100).unwrap();
    assert_eq!(cpu.challenge.n % compute::CHUNK_ENTRIES, 0);
    assert_eq!(cpu.challenge.n_products, 1);
    assert!(cpu.challenge.validate().is_ok());
}

#[test]
fn memory_plans_fill_seven_eighths_and_say_what_they_prove() {
    let plan = GPU.plan_memory([2; 32], 50, claim::PROBES_PLAN).unwrap();
    assert_eq!(plan.challenge.memory_bytes, 70 * GIB);
    // k* ≈ 2 · (50 + 3146 + 10) ms / (2^20 · 50 ns) + 1 ≈ 123.3; four times
    // that, rounded up to a power of two.
    assert!((plan.cheat_factor_caught - 123.3).abs() < 0.1, "{}", plan.cheat_factor_caught);
    assert_eq!(plan.challenge.chunks_per_block, 512);
    // A slow network makes k* and the chains longer.
    let far = GPU.plan_memory([2; 32], 5_000, claim::PROBES_PLAN).unwrap();
    assert!((far.cheat_factor_caught - 312.1).abs() < 0.1, "{}", far.cheat_factor_caught);
    assert_eq!(far.challenge.chunks_per_block, 2048);
    assert!(plan.challenge.validate().is_ok());
    assert_eq!(plan.probe_deadline_ms, memory::probe_deadline_ms(plan.challenge.n_probes, 50));
    assert!(plan.cheat_factor_caught > 1.0 && plan.cheat_factor_caught < f64::from(plan.challenge.chunks_per_block));
    assert!(plan.fill_deadline_ms > plan.fill_expected_ms as u64);

    // A tiny memory gets shorter chains; a smaller one is refused.
    let small = Claim { memory_bytes: 16 * 1024, ..CPU }.plan_memory([2; 32], 5_000, claim::PROBES_PLAN).unwrap();
    assert!(small.challenge.validate().is_ok());
    assert!(u64::from(small.challenge.chunks_per_block) * 32 <= small.challenge.memory_bytes);
    assert!(small.challenge.chunks_per_block < 2048);
    let refused = Claim { memory_bytes: 1000, ..CPU }.plan_memory([2; 32], 50, claim::PROBES_PLAN).unwrap_err();
    assert!(matches!(refused, ClaimError::MemoryBytes { got: 1000, .. }));
    let ClaimError::MemoryBytes { min, .. } = refused else { unreachable!() };
    assert!(Claim { memory_bytes: min, ..CPU }.plan_memory([2; 32], 50, claim::PROBES_PLAN).is_ok());
    assert!(Claim { memory_bytes: min - 8, ..CPU }.plan_memory([2; 32], 50, claim::PROBES_PLAN).is_err());
    // The walk's length is the caller's, within the module's limits; a
    // shorter walk leaves more slack per step, so k* grows.
    let short = GPU.plan_memory([2; 32], 50, 1 << 16).unwrap();
    assert_eq!(short.challenge.n_probes, 1 << 16);
    assert!(short.cheat_factor_caught > plan.cheat_factor_caught);
    for steps in [0, memory::PROBES_MAX + 1] {
        assert_eq!(GPU.plan_memory([2; 32], 50, steps).unwrap_err(), ClaimError::WalkSteps(steps));
    }
}

#[test]
fn hash_plans_miss_rarely() {
    let plan = CPU.plan_hash([3; 32], 1000, 100).unwrap();
    assert!(plan.miss_probability < 1e-3);
    assert_eq!(plan.deadline_ms, (plan.expected_ms * puzzle::DEADLINE_MULTIPLE).ceil() as u64 + 100);
}

#[test]
fn bad_claims_and_timings_are_refused_with_the_fix() {
    let nan = Claim { int8_ops_per_s: f64::NAN, ..CPU };
    assert!(matches!(nan.validate(), Err(ClaimError::Int8OpsPerS(_))));
    let zero = Claim { hashes_per_s: 0.0, ..CPU };
    assert_eq!(zero.validate().unwrap_err().to_string(), "claim.hashes_per_s must be a number > 0 and <= 1e14, got 0");
    let infinite = Claim { int8_ops_per_s: f64::INFINITY, ..CPU };
    assert!(infinite.plan_compute([0; 32], 1000, 0).is_err());
    assert_eq!(CPU.plan_hash([0; 32], 1, 0).unwrap_err(), ClaimError::TargetMs(1));
    assert_eq!(CPU.plan_compute([0; 32], 1000, 61_000).unwrap_err(), ClaimError::NetworkMs(61_000));
}

proptest! {
    #[test]
    fn every_plan_is_a_valid_challenge_with_a_deadline_past_its_time(
        int8_ops_per_s in 1e8f64..1e17,
        hashes_per_s in 1e4f64..1e14,
        memory_bytes in 1u64 << 14..1u64 << 40,
        target_ms in claim::TARGET_MS_MIN..claim::TARGET_MS_MAX,
        network_ms in 0u64..claim::NETWORK_MS_MAX,
    ) {
        let claim = Claim { int8_ops_per_s, memory_bytes, hashes_per_s };
        let compute_plan = claim.plan_compute([5; 32], target_ms, network_ms).unwrap();
        prop_assert!(compute_plan.challenge.validate().is_ok());
        prop_assert!(compute_plan.deadline_ms as f64 >= compute_plan.expected_ms + network_ms as f64);
        let memory_plan = claim.plan_memory([5; 32], network_ms, claim::PROBES_PLAN).unwrap();
        prop_assert!(memory_plan.challenge.validate().is_ok());
        prop_assert!(memory_plan.challenge.filled_bytes() <= memory_bytes);
        // Chains are longer than k* whenever memory and limits allow.
        let roomy = memory_plan.challenge.memory_bytes >= 4 * u64::from(memory::CHUNKS_PER_BLOCK_MAX) * 32;
        if roomy && memory_plan.cheat_factor_caught * claim::CHAIN_MARGIN <= f64::from(memory::CHUNKS_PER_BLOCK_MAX) {
            prop_assert!(f64::from(memory_plan.challenge.chunks_per_block) >= memory_plan.cheat_factor_caught * claim::CHAIN_MARGIN);
        }
        let hash_plan = claim.plan_hash([5; 32], target_ms, network_ms).unwrap();
        prop_assert!(hash_plan.challenge.validate().is_ok());
        prop_assert!(hash_plan.deadline_ms as f64 >= hash_plan.expected_ms + network_ms as f64);
    }
}

#[test]
fn only_the_exact_names_of_software_adapters_get_the_software_rate() {
    use iog_trust::claim::{GPU_INT8_OPS_PER_S_FLOOR, SOFTWARE_GPU_INT8_OPS_PER_S, gpu_claim, is_software_gpu};
    for model in ["llvmpipe (LLVM 15.0.6, 256 bits)", "SwiftShader Device (Subzero)", "Microsoft Basic Render Driver"] {
        assert!(is_software_gpu(model), "{model}");
        assert_eq!(gpu_claim(model).int8_ops_per_s, SOFTWARE_GPU_INT8_OPS_PER_S);
    }
    // Placement matches models as parts of the name: none of these may
    // pass as software and be placed as an H100.
    for model in [
        "llvmpipe H100",
        "llvmpipe (LLVM 15.0.6, 256 bits) H100",
        "llvmpipe (LLVM H100, 256 bits)",
        "NVIDIA H100 80GB HBM3",
        "Microsoft Basic Render Driver H100",
        "",
    ] {
        assert!(!is_software_gpu(model), "{model}");
        assert_eq!(gpu_claim(model).int8_ops_per_s, GPU_INT8_OPS_PER_S_FLOOR);
    }
    let claim = gpu_claim("NVIDIA H100 80GB HBM3");
    claim.validate().unwrap();
    assert_eq!(claim.memory_bytes, 0, "GPU memory has no challenge yet");
    let plan = claim.plan_compute([1; 32], 250, 0).unwrap();
    assert!(plan.challenge.n >= 2048, "a GPU's challenge is far beyond a CPU's: {:?}", plan.challenge);
}
