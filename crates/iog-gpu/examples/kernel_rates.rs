//! Throughput of each GPU kernel beside its CPU twin, on every adapter
//! found (software ones included):
//!
//! ```text
//! cargo run --release -p iog-gpu --example kernel_rates [-- NONCES [SAMPLES [N...]]]
//! ```
//!
//! Each search covers NONCES nonces (default 2^24) at a difficulty that
//! finds a handful, after one warm-up search of a tenth as many. Each sim
//! task (the default `option` and `slab` models) draws SAMPLES samples
//! (default 2^24): on the CPU as a worker runs it (its 64 blocks on all
//! threads), on the GPU the kernel alone, after a warm-up task of a tenth
//! as many; two of the kernel's blocks are checked against the CPU's.
//! A 64×64 tile of the demo scene at 64 samples a pixel is traced on both
//! and compared (PSNR). Each compute challenge product of size N (default 512 and 1024) is
//! computed and hashed into its row hashes on both, after a warm-up
//! product, and the two compared; the rate is 2·N³ int8 ops over the time.

use std::time::Instant;

use iog_gpu::{DiscoverOptions, Gpu};
use iog_trust::compute::{self, ProductSpec};
use iog_workloads::hash::{HashAlgorithm, search_range};
use iog_workloads::sim::{OptionModel, SIM_BLOCKS, SimSpec, SlabModel};
use iog_workloads::{Accelerator, HashSearch, SimKernelTask, SimModel, WorkloadSpec};

fn main() {
    let nonces: u64 = std::env::args().nth(1).map_or(1 << 24, |text| text.parse().expect("NONCES is a number"));
    let samples: u64 = std::env::args().nth(2).map_or(1 << 24, |text| text.parse().expect("SAMPLES is a number"));
    let mut sizes: Vec<u32> = std::env::args().skip(3).map(|text| text.parse().expect("N is a number")).collect();
    if sizes.is_empty() {
        sizes = vec![512, 1024];
    }
    let discovery = iog_gpu::discover(DiscoverOptions { software: true });
    for note in &discovery.notes {
        eprintln!("{note}");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let gpus: Vec<(String, Gpu)> = discovery
        .adapters
        .iter()
        .enumerate()
        .map(|(idx, adapter)| {
            let gpu = Gpu::open(&format!("gpu{idx}"), adapter).expect("the kernels compile");
            (format!("{} ({})", adapter.model(), adapter.backend()), gpu)
        })
        .collect();
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
        row(algorithm, &format!("CPU, {cores} threads"), nonces, seconds);
        for (device, gpu) in &gpus {
            let warm = HashSearch { nonce_count: (nonces / 10).max(1), ..search };
            gpu.hash_search(&warm).expect("the warm-up runs");
            let started = Instant::now();
            let finds = gpu.hash_search(&search).expect("the kernel runs").expect("the kernel takes this search");
            let seconds = started.elapsed().as_secs_f64();
            assert_eq!(finds, cpu, "the kernel finds what the CPU finds");
            row(algorithm, device, nonces, seconds);
        }
    }
    println!();
    println!("| sim model | device | samples | seconds | samples/s |");
    println!("|---|---|---|---|---|");
    for (name, model) in
        [("option", SimModel::Option(OptionModel::default())), ("slab", SimModel::Slab(SlabModel::default()))]
    {
        let spec = WorkloadSpec::Sim(SimSpec {
            model: name.to_owned(),
            tasks: 1,
            samples_per_task: samples,
            seed: 1,
            option: None,
            slab: None,
        });
        let input = iog_workloads::plan(&spec).expect("the spec plans").remove(0);
        let started = Instant::now();
        iog_workloads::run_task(&input).expect("the task runs");
        let seconds = started.elapsed().as_secs_f64();
        sim_row(name, &format!("CPU, {cores} threads"), samples, seconds);
        let task = SimKernelTask { model, stream: 1, samples, block_len: samples.div_ceil(SIM_BLOCKS) };
        for (device, gpu) in &gpus {
            let warm = SimKernelTask {
                samples: (samples / 10).max(1),
                block_len: (samples / 10).max(1).div_ceil(SIM_BLOCKS),
                ..task
            };
            gpu.sim_blocks(&warm).expect("the warm-up runs");
            let started = Instant::now();
            let blocks = gpu.sim_blocks(&task).expect("the kernel runs").expect("the kernel takes this task");
            let seconds = started.elapsed().as_secs_f64();
            for block in [0, SIM_BLOCKS - 1] {
                let expected = task.cpu_block(block);
                assert!(
                    model.tolerance().blocks_agree(&blocks[block as usize], &expected),
                    "block {block}: {:?}, the CPU {expected:?}",
                    blocks[block as usize]
                );
            }
            sim_row(name, device, samples, seconds);
        }
    }
    println!();
    println!("| render tile | device | seconds | paths/s | PSNR against the CPU |");
    println!("|---|---|---|---|---|");
    {
        // A 64×64 tile of the demo scene (the Cornell box) at 64 samples.
        let mut spec = iog_workloads::demo_job().render.expect("the demo job renders");
        (spec.width, spec.height, spec.tile_size, spec.samples_per_pixel) = (64, 64, 64, 64);
        let paths = 64.0 * 64.0 * 64.0;
        let input = iog_workloads::plan(&WorkloadSpec::Render(spec)).expect("the demo plans").remove(0);
        let started = Instant::now();
        let cpu = iog_workloads::run_task(&input).expect("the tile renders").output;
        let seconds = started.elapsed().as_secs_f64();
        println!("| 64×64, 64 samples | CPU, {cores} threads | {seconds:.3} | {:.3e} | |", paths / seconds);
        let task = iog_workloads::render_kernel_task(&input).expect("the input decodes").expect("a render task");
        for (device, gpu) in &gpus {
            let started = Instant::now();
            let tile = gpu.render_tile(&task).expect("the kernel runs").expect("the kernel takes the tile");
            let seconds = started.elapsed().as_secs_f64();
            let db = iog_workloads::render::kernel::psnr(&tile, &cpu);
            println!("| 64×64, 64 samples | {device} | {seconds:.3} | {:.3e} | {db:.1} dB |", paths / seconds);
        }
    }
    println!();
    println!("| nbody window | device | seconds | interactions/s | largest difference from the CPU |");
    println!("|---|---|---|---|---|");
    {
        let window = |particles: u32| {
            let spec = iog_workloads::NbodySpec {
                particles,
                windows: 1,
                steps_per_window: 40,
                dt: 1e-3,
                softening: 0.01,
                seed: 1,
                initial: "plummer".to_owned(),
            };
            let input = iog_workloads::plan_on(&WorkloadSpec::Nbody(spec), iog_workloads::DeviceChoice::Gpu)
                .expect("the spec plans")
                .remove(0);
            iog_workloads::nbody_kernel_task(&input).expect("the input decodes").expect("an nbody task")
        };
        let task = window(1024);
        let interactions = task.interactions() as f64;
        let started = Instant::now();
        let cpu = task.cpu_states(task.stops.len()).pop().expect("a state at the end");
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "| 1024 particles, 40 steps | CPU, {cores} threads | {seconds:.3} | {:.3e} | |",
            interactions / seconds
        );
        for (device, gpu) in &gpus {
            if let Some(why) = gpu.nbody_error() {
                println!("| 1024 particles, 40 steps | {device} | | | no kernel: {why} |");
                continue;
            }
            gpu.nbody_states(&window(64)).expect("the warm-up runs");
            let started = Instant::now();
            let states = gpu.nbody_states(&task).expect("the kernel runs").expect("the kernel takes the system");
            let seconds = started.elapsed().as_secs_f64();
            let end = states.last().expect("a state at the end");
            let off = end
                .positions
                .iter()
                .chain(&end.velocities)
                .flatten()
                .zip(cpu.positions.iter().chain(&cpu.velocities).flatten())
                .map(|(g, c)| (g - c).abs() / c.abs().max(1e-300))
                .fold(0.0f64, f64::max);
            println!(
                "| 1024 particles, 40 steps | {device} | {seconds:.3} | {:.3e} | {off:.1e} relative |",
                interactions / seconds
            );
        }
    }
    println!();
    println!("| compute challenge product | device | seconds | int8 op/s |");
    println!("|---|---|---|---|");
    for n in sizes {
        let product = ProductSpec { n, key_a: 1, key_b: 2 };
        let ops = 2.0 * f64::from(n).powi(3);
        let started = Instant::now();
        let cpu = compute::product_row_hashes(&product);
        let seconds = started.elapsed().as_secs_f64();
        println!("| n = {n} | CPU, {cores} threads | {seconds:.3} | {:.3e} |", ops / seconds);
        for (device, gpu) in &gpus {
            gpu.challenge_rows(&[ProductSpec { key_a: 3, ..product }], &|| true).expect("the warm-up runs");
            let started = Instant::now();
            let rows =
                gpu.challenge_rows(&[product], &|| true).expect("the kernel runs").expect("the kernel takes this n");
            let seconds = started.elapsed().as_secs_f64();
            assert!(rows == [cpu.clone()], "the kernel's row hashes are the CPU's");
            println!("| n = {n} | {device} | {seconds:.3} | {:.3e} |", ops / seconds);
        }
    }
}

fn sim_row(model: &str, device: &str, samples: u64, seconds: f64) {
    println!("| {model} | {device} | {samples} | {seconds:.3} | {:.3e} |", samples as f64 / seconds);
}

fn row(algorithm: HashAlgorithm, device: &str, nonces: u64, seconds: f64) {
    let name = match algorithm {
        HashAlgorithm::Sha256d => "sha256d",
        HashAlgorithm::Blake3 => "blake3",
    };
    println!("| {name} | {device} | {nonces} | {seconds:.3} | {:.3e} |", nonces as f64 / seconds);
}
