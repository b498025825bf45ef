//! Times the worker's answer against the coordinator's check for each
//! challenge at a few sizes on this machine, and prints the ratio.
//!
//! `cargo run --release -p iog-trust --example challenge_costs`
//!
//! Sizes stay modest (n ≤ 1024, memory ≤ 256 MiB, puzzles ≤ 2 s) so the run
//! takes under a minute on a small machine. Figures are wall-clock on all
//! cores for the worker (rayon) and one core for the coordinator.

use std::time::{Duration, Instant};

use iog_trust::{Claim, Seed, compute, memory, puzzle};

fn seed(byte: u8) -> Seed {
    [byte; 32]
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

fn row(challenge: &str, size: &str, worker: Duration, coordinator: Duration) {
    println!(
        "{challenge:<8} {size:<28} worker {:>10.2} ms   check {:>8.3} ms   ratio {:>10.0}",
        ms(worker),
        ms(coordinator),
        worker.as_secs_f64() / coordinator.as_secs_f64()
    );
}

fn main() {
    println!("cores: {}", rayon::current_num_threads());

    for n in [128, 256, 512, 1024] {
        let challenge = compute::ComputeChallenge { seed: seed(1), n, n_products: 1, n_samples: compute::SAMPLES_PLAN };
        let (work, commit_time) = timed(|| compute::commit(&challenge).expect("valid challenge"));
        let (answer, answer_time) = timed(|| work.answer(&seed(2)));
        let commitment = work.commitment();
        let (verdict, check_time) = timed(|| compute::check(&challenge, &commitment, &seed(2), &answer));
        verdict.expect("an honest answer passes");
        let ops_per_s = challenge.ops() / commit_time.as_secs_f64();
        row(
            "compute",
            &format!("n {n}, s {} ({:.1} Gop/s)", challenge.n_samples, ops_per_s / 1e9),
            commit_time + answer_time,
            check_time,
        );
    }

    // The sequential hash a cheater would pay per rebuilt chunk.
    let chain_len = 1u32 << 20;
    let (_, chain_time) = timed(|| memory::chunk(&seed(3), 0, chain_len - 1));
    println!("memory   sequential keyed hash: {:.1} ns", chain_time.as_secs_f64() * 1e9 / f64::from(chain_len));
    // Chain length and walk as the planner picks them for a 200 ms network
    // allowance (a wide-area worker: 2 · RTT + 200 ms, RTT small).
    let claim = Claim { int8_ops_per_s: 1e10, memory_bytes: 1 << 30, hashes_per_s: 1e7 };
    let plan = claim.plan_memory(seed(3), 200, iog_trust::claim::PROBES_PLAN).expect("valid claim");
    let chunks_per_block = plan.challenge.chunks_per_block;
    let n_probes = plan.challenge.n_probes;
    let n_checked = plan.n_checked;
    println!(
        "memory   planned chain {chunks_per_block} chunks, walk {n_probes} steps, deadline {} ms, k* {:.0}",
        plan.probe_deadline_ms, plan.cheat_factor_caught
    );
    for memory_mib in [16u64, 64, 256] {
        let challenge =
            memory::MemoryChallenge { seed: seed(3), memory_bytes: memory_mib << 20, chunks_per_block, n_probes };
        let (fill, fill_time) = timed(|| memory::fill(&challenge).expect("valid challenge"));
        let (walk, walk_time) = timed(|| fill.walk(&seed(4)));
        let (answer, open_time) = timed(|| walk.open(&seed(5), n_checked));
        let answer_bytes = serde_json::to_vec(&answer).expect("answers serialise").len();
        let commitment = walk.commitment();
        let (verdict, check_time) =
            timed(|| memory::check(&challenge, &seed(4), &commitment, &seed(5), n_checked, &answer));
        verdict.expect("an honest answer passes");
        println!(
            "memory   {memory_mib} MiB: fill {:.0} ms, walk and tree {:.0} ms ({:.0} ns a step), open {:.2} ms, answer {} KiB of JSON",
            ms(fill_time),
            ms(walk_time),
            walk_time.as_secs_f64() * 1e9 / f64::from(n_probes),
            ms(open_time),
            answer_bytes / 1024
        );
        row("memory", &format!("{memory_mib} MiB, {n_checked} checks"), fill_time + walk_time + open_time, check_time);
    }
    // A worker keeping 1/k of 256 MiB: its walk against the planned deadline.
    let challenge = memory::MemoryChallenge { seed: seed(3), memory_bytes: 256 << 20, chunks_per_block, n_probes };
    for keep_every in [4, 16, 64, chunks_per_block] {
        let sparse = memory::SparseFill::new(&challenge, keep_every).expect("valid challenge");
        let (_, walk_time) = timed(|| sparse.walk(&seed(4)));
        let verdict = if ms(walk_time) > plan.probe_deadline_ms as f64 { "caught" } else { "passes" };
        println!(
            "memory   keeping 1/{keep_every} ({} MiB of 256): walk {:.0} ms against {} ms: {verdict}",
            sparse.held_bytes() >> 20,
            ms(walk_time),
            plan.probe_deadline_ms
        );
    }

    // Measure this machine's hash rate, then size puzzles to targets.
    let probe = puzzle::HashChallenge { seed: seed(6), difficulty_bits: 64, n_solutions: 1 };
    let probe_hashes = 1u64 << 22;
    let (_, probe_time) = timed(|| puzzle::solve(&probe, probe_hashes));
    let hashes_per_s = probe_hashes as f64 / probe_time.as_secs_f64();
    println!("hash     rate on all cores: {:.1} M/s", hashes_per_s / 1e6);
    for target_ms in [250, 1000, 2000] {
        let challenge = puzzle::plan(seed(7), hashes_per_s, target_ms);
        let (answer, solve_time) =
            timed(|| puzzle::solve(&challenge, (challenge.expected_hashes() * 20.0) as u64).expect("solvable"));
        let (verdict, check_time) = timed(|| puzzle::check(&challenge, &answer));
        verdict.expect("an honest answer passes");
        row(
            "hash",
            &format!("target {target_ms} ms, d {}, m {}", challenge.difficulty_bits, challenge.n_solutions),
            solve_time,
            check_time,
        );
    }
}
