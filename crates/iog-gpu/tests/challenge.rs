//! The compute challenge's kernel against its CPU twin
//! (`iog_trust::compute::product_row_hashes`), bit for bit, and a whole
//! challenge committed from the kernel's rows passing the coordinator's
//! check. Runs on software Vulkan in CI; `IOG_REQUIRE_GPU_ADAPTER=1` makes
//! a machine without an adapter a failure rather than a skip.

mod common;

use common::gpu;
use iog_trust::ComputeChallenge;
use iog_trust::compute::{self, ProductSpec};
use iog_workloads::Accelerator;

#[test]
fn row_hashes_match_the_cpu_at_every_shape_of_row_and_band() {
    let Some(gpu) = gpu() else { return };
    // Rows of one short chunk, of whole chunks (a leaf over two BLAKE3
    // chunks), of a whole chunk and a short one, of an odd count of
    // chunks; n not a multiple of a tile, of a packed word or of 8.
    for (i, n) in [16u32, 17, 64, 255, 256, 257, 768, 1000].into_iter().enumerate() {
        let product = ProductSpec { n, key_a: 0x9e37_79b9 ^ (i as u64) << 40, key_b: u64::MAX - i as u64 };
        let got = gpu.challenge_rows(&[product], &|| true).unwrap().expect("the kernel takes n up to N_PLAN_MAX");
        let want = compute::product_row_hashes(&product);
        assert_eq!(got.len(), 1);
        let wrong = got[0].iter().zip(&want).filter(|(got, want)| got != want).count();
        assert_eq!(wrong, 0, "n = {n}: {wrong} of {n} row hashes differ from the CPU's");
        assert_eq!(got[0].len(), n as usize);
    }
}

#[test]
fn a_challenge_committed_from_the_kernel_passes_the_check() {
    let Some(gpu) = gpu() else { return };
    let challenge = ComputeChallenge { seed: [7; 32], n: 320, n_products: 3, n_samples: 32 };
    let products: Vec<ProductSpec> = (0..challenge.n_products).map(|idx| challenge.product(idx)).collect();
    let rows = gpu.challenge_rows(&products, &|| true).unwrap().expect("the kernel takes n = 320");
    let work = compute::commit_rows(&challenge, rows).unwrap();
    let cpu = compute::commit(&challenge).unwrap();
    assert_eq!(work.commitment(), cpu.commitment(), "the kernel commits to the CPU's root");
    let sample_seed = [9; 32];
    let answer = work.answer(&sample_seed);
    compute::check(&challenge, &work.commitment(), &sample_seed, &answer).expect("an honest answer passes");
}
