//! What a spot check costs the coordinator next to what the task cost its
//! worker: a render tile, a hash search, a Monte Carlo task and an N-body
//! window, each run once and checked with several seeds
//! (`cargo run --release -p iog-workloads --example spot_costs`).

use std::time::Instant;

use iog_workloads::{parse_job_file_with, plan, run_task, spot_check};

/// Checks timed per task, each with its own seed.
const CHECKS: u64 = 20;

fn inputs_of(job: &str) -> Vec<Vec<u8>> {
    let scene = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/scenes/cornell.toml"))
        .expect("the example scene");
    let spec = parse_job_file_with(job, &mut |_: &str| Ok(scene.clone())).expect("a valid job");
    plan(&spec.workload().expect("a workload")).expect("a plan")
}

fn measure(name: &str, input: &[u8]) {
    let started = Instant::now();
    let output = run_task(input).expect("the task runs").output;
    let task_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    for seed in 0..CHECKS {
        let spot = spot_check(input, &output, seed).expect("the check runs");
        assert!(spot.passed, "{}", spot.detail);
    }
    let check_ms = started.elapsed().as_secs_f64() * 1e3 / CHECKS as f64;
    println!("| {name} | {task_ms:.1} ms | {check_ms:.3} ms | {:.0} |", task_ms / check_ms);
}

fn main() {
    println!("| task | worker | spot check | worker / check |");
    println!("| --- | --- | --- | --- |");
    for spp in [64, 256] {
        let job = format!(
            "[job]\nname = \"r\"\nworkload = \"render\"\n[render]\nscene = \"cornell.toml\"\nwidth = 320\n\
             height = 240\ntile_size = 32\nsamples_per_pixel = {spp}\nseed = 1\n"
        );
        let inputs = inputs_of(&job);
        measure(&format!("render tile 32 × 32, {spp} rays per pixel"), &inputs[inputs.len() / 2]);
    }
    for nonces in [1_000_000u64, 16_000_000] {
        let job = format!(
            "[job]\nname = \"h\"\nworkload = \"hash\"\n[hash]\nalgorithm = \"blake3\"\ndata = \"spot\"\n\
             nonce_start = 0\nnonce_count = {nonces}\nnonces_per_task = {nonces}\ndifficulty_bits = 20\n"
        );
        measure(&format!("hash search, {nonces} blake3 nonces"), &inputs_of(&job)[0]);
    }
    for (model, samples) in [("option", 1_000_000u64), ("slab", 1_000_000)] {
        let job = format!(
            "[job]\nname = \"s\"\nworkload = \"sim\"\n[sim]\nmodel = \"{model}\"\ntasks = 1\n\
             samples_per_task = {samples}\n"
        );
        measure(&format!("sim {model}, {samples} samples"), &inputs_of(&job)[0]);
    }
    for (particles, steps) in [(256u32, 200u64), (1024, 200)] {
        let job = format!(
            "[job]\nname = \"n\"\nworkload = \"nbody\"\n[nbody]\nparticles = {particles}\nwindows = 1\n\
             steps_per_window = {steps}\ndt = 0.001\n"
        );
        measure(&format!("nbody window, {particles} particles, {steps} steps"), &inputs_of(&job)[0]);
    }
}
