//! Throughput of each GPU kernel beside its CPU twin, on every adapter
//! found (software ones included):
//!
//! ```text
//! cargo run --release -p iog-gpu --example kernel_rates [-- NONCES]
//! ```
//!
//! Each search covers NONCES nonces (default 2^24) at a difficulty that
//! finds a handful, after one warm-up search of a tenth as many.

use std::time::Instant;

use iog_gpu::{DiscoverOptions, Gpu};
use iog_workloads::hash::{HashAlgorithm, search_range};
use iog_workloads::{Accelerator, HashSearch};

fn main() {
    let nonces: u64 = std::env::args().nth(1).map_or(1 << 24, |text| text.parse().expect("NONCES is a number"));
    let discovery = iog_gpu::discover(DiscoverOptions { software: true });
    for note in &discovery.notes {
        eprintln!("{note}");
    }
    println!("| kernel | device | nonces | seconds | hashes/s |");
    println!("|---|---|---|---|---|");
    for algorithm in [HashAlgorithm::Sha256d, HashAlgorithm::Blake3] {
        let search = HashSearch {
            algorithm,
            data: b"iog kernel rates",
            nonce_start: 0,
            nonce_count: nonces,
            difficulty_bits: 20,
        };
        let started = Instant::now();
        let cpu = search_range(algorithm, search.data, 0, nonces, search.difficulty_bits);
        let seconds = started.elapsed().as_secs_f64();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        row(algorithm, &format!("CPU, {cores} threads"), nonces, seconds);
        for (idx, adapter) in discovery.adapters.iter().enumerate() {
            let gpu = Gpu::open(&format!("gpu{idx}"), adapter).expect("the kernels compile");
            let warm = HashSearch { nonce_count: (nonces / 10).max(1), ..search };
            gpu.hash_search(&warm).expect("the warm-up runs");
            let started = Instant::now();
            let finds = gpu.hash_search(&search).expect("the kernel runs").expect("the kernel takes this search");
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(finds, cpu, "the kernel finds what the CPU finds");
            row(algorithm, &format!("{} ({})", adapter.model(), adapter.backend()), nonces, seconds);
        }
    }
}

fn row(algorithm: HashAlgorithm, device: &str, nonces: u64, seconds: f64) {
    let name = match algorithm {
        HashAlgorithm::Sha256d => "sha256d",
        HashAlgorithm::Blake3 => "blake3",
    };
    println!("| {name} | {device} | {nonces} | {seconds:.3} | {:.3e} |", nonces as f64 / seconds);
}
