//! Each GPU kernel against its CPU twin, on whatever adapter this machine
//! has: software Vulkan (Mesa's llvmpipe) in CI, a real GPU elsewhere.
//! `IOG_REQUIRE_GPU_ADAPTER=1` makes a machine without one a failure
//! rather than a skip.

mod common;

use common::gpu;
use iog_gpu::{DiscoverOptions, Gpu};
use iog_workloads::hash::{HashAlgorithm, hash_nonce, leading_zero_bits};
use iog_workloads::{Accelerator, HashSearch};

/// Every qualifying nonce of the range, searched one by one on the CPU.
fn cpu_finds(search: &HashSearch<'_>) -> Vec<u64> {
    (search.nonce_start..=search.nonce_start + (search.nonce_count - 1))
        .filter(|&nonce| leading_zero_bits(&hash_nonce(search.algorithm, search.data, nonce)) >= search.difficulty_bits)
        .collect()
}

fn assert_same(gpu: &Gpu, search: HashSearch<'_>) {
    let finds = gpu.hash_search(&search).unwrap().expect("the kernel takes this search");
    let expected = cpu_finds(&search);
    assert_eq!(finds.count, expected.len() as u64, "{:?} over {} bytes", search.algorithm, search.data.len());
    let kept = expected.len().min(iog_workloads::hash::FOUND_MAX as usize);
    assert_eq!(finds.nonces, expected[..kept], "{:?} over {} bytes", search.algorithm, search.data.len());
}

#[test]
fn the_hash_kernels_find_exactly_what_the_cpu_finds() {
    let Some(gpu) = gpu() else { return };
    let data: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    // Data lengths either side of SHA-256's and BLAKE3's block edges, a long
    // SHA-256 prefix, and BLAKE3's longest one-chunk message.
    for (algorithm, lengths) in [
        (HashAlgorithm::Sha256d, &[0usize, 3, 47, 48, 55, 56, 64, 119, 200, 4096][..]),
        (HashAlgorithm::Blake3, &[0, 1, 55, 56, 57, 120, 1016][..]),
    ] {
        for &length in lengths {
            let search = HashSearch {
                algorithm,
                data: &data[..length],
                nonce_start: 1_000 + length as u64,
                nonce_count: 20_000,
                difficulty_bits: 8,
            };
            assert_same(&gpu, search);
        }
    }
}

#[test]
fn nonces_carry_across_the_32_bit_boundary() {
    let Some(gpu) = gpu() else { return };
    for algorithm in [HashAlgorithm::Sha256d, HashAlgorithm::Blake3] {
        let search = HashSearch {
            algorithm,
            data: b"carry",
            nonce_start: (1 << 32) - 10_000,
            nonce_count: 20_000,
            difficulty_bits: 7,
        };
        assert_same(&gpu, search);
        let top = HashSearch { nonce_start: u64::MAX - 4_999, nonce_count: 5_000, ..search };
        assert_same(&gpu, top);
    }
}

#[test]
fn more_finds_than_the_kernel_keeps_fall_back_to_the_cpu_for_order() {
    let Some(gpu) = gpu() else { return };
    // About 20 000 finds in 40 000 nonces, past the 10 000 a batch keeps.
    let search = HashSearch {
        algorithm: HashAlgorithm::Blake3,
        data: b"dense",
        nonce_start: 0,
        nonce_count: 40_000,
        difficulty_bits: 1,
    };
    assert_same(&gpu, search);
}

#[test]
fn a_blake3_message_longer_than_one_chunk_is_left_to_the_cpu() {
    let Some(gpu) = gpu() else { return };
    let data = [1u8; 1017];
    let search = HashSearch {
        algorithm: HashAlgorithm::Blake3,
        data: &data,
        nonce_start: 0,
        nonce_count: 1_000,
        difficulty_bits: 4,
    };
    assert_eq!(gpu.hash_search(&search).unwrap(), None);
}

#[test]
fn a_hash_task_run_on_the_gpu_gives_the_cpu_run_s_bytes_and_says_where_it_ran() {
    let Some(gpu) = gpu() else { return };
    let spec = iog_workloads::parse_job_file(
        r#"
        [job]
        name = "gpu hash"
        workload = "hash"
        [hash]
        algorithm = "sha256d"
        data = "iog on a GPU"
        nonce_count = 60000
        nonces_per_task = 30000
        difficulty_bits = 10
        "#,
        std::path::Path::new("."),
    )
    .unwrap()
    .workload()
    .unwrap();
    let on_gpu = iog_workloads::plan_on(&spec, iog_workloads::DeviceChoice::Gpu).unwrap();
    let on_cpu = iog_workloads::plan(&spec).unwrap();
    for (gpu_input, cpu_input) in on_gpu.iter().zip(&on_cpu) {
        assert!(matches!(
            iog_workloads::decode_task(gpu_input).unwrap(),
            iog_workloads::Decoded::BuiltIn { gpu: true }
        ));
        let ran = iog_workloads::run_task_on(gpu_input, Some(&gpu)).unwrap();
        assert_eq!(ran.device.as_deref(), Some("gpu0"));
        let cpu = iog_workloads::run_task(cpu_input).unwrap();
        assert_eq!(ran.run, cpu, "the GPU's output is the CPU's, byte for byte");
    }
}

#[test]
fn software_adapters_are_offered_only_when_asked_for() {
    let discovery = iog_gpu::discover(DiscoverOptions::default());
    assert!(discovery.adapters.iter().all(|adapter| !adapter.is_software()), "{:?}", discovery.adapters);
    let with_software = iog_gpu::discover(DiscoverOptions { software: true });
    for adapter in with_software.adapters.iter().filter(|adapter| adapter.is_software()) {
        let note = discovery.notes.iter().find(|note| note.contains(adapter.model()));
        assert!(note.is_some_and(|note| note.contains("software adapter")), "{:?}", discovery.notes);
    }
}

/// Run by [`a_machine_without_an_adapter_is_told_so`] in a process of its
/// own, where the Vulkan loader finds no driver.
#[test]
fn child_finds_no_adapter() {
    if std::env::var_os("IOG_GPU_TEST_CHILD").is_none() {
        return;
    }
    let discovery = iog_gpu::discover(DiscoverOptions { software: true });
    assert!(discovery.adapters.is_empty(), "{:?}", discovery.adapters);
    println!("NOTES: {}", discovery.notes.join(" | "));
}

#[test]
fn a_machine_without_an_adapter_is_told_so() {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_finds_no_adapter", "--nocapture"])
        .env("IOG_GPU_TEST_CHILD", "1")
        .env("VK_ICD_FILENAMES", "/nonexistent/icd.json")
        .env("VK_DRIVER_FILES", "/nonexistent/icd.json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("NOTES: wgpu: no GPU adapter found"), "{stdout}");
    assert!(stdout.contains("tasks run on the CPU"), "{stdout}");
}
