//! `iog-sim`: runs seeded whole-network simulations.
//!
//! ```text
//! iog-sim --seeds 10000                 # seeds 0..10000, report seeds/s and failures
//! iog-sim --seed 42 --trace             # replay one seed step by step
//! iog-sim --seeds 100 --workers 1000 --jobs 10 --tasks-per-job 1000
//! ```

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use iog_sim::{Faults, SimConfig, Stats, run};

#[derive(Debug, Parser)]
#[command(name = "iog-sim", about = "Seeded whole-network simulation of iog under faults")]
struct Args {
    /// Run seeds `first-seed .. first-seed + seeds`.
    #[arg(long, default_value_t = 1000)]
    seeds: u64,
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Run only this seed (with --trace, print every step).
    #[arg(long)]
    seed: Option<u64>,
    #[arg(long)]
    trace: bool,
    #[arg(long, default_value_t = 8)]
    workers: u32,
    #[arg(long, default_value_t = 4)]
    jobs: u32,
    #[arg(long, default_value_t = 25)]
    tasks_per_job: u32,
    /// The chance in 1000 that a job is a gang (all its tasks at once on
    /// distinct workers, or none).
    #[arg(long, default_value_t = SimConfig::default().gang_per_mille)]
    gang_per_mille: u32,
    /// Longest a waiting gang holds devices, in ms.
    #[arg(long, default_value_t = SimConfig::default().core.gang_reserve_ms)]
    gang_reserve_ms: u64,
    /// How long a gang whose hold timed out waits before it holds again, in ms.
    #[arg(long, default_value_t = SimConfig::default().core.gang_retry_ms)]
    gang_retry_ms: u64,
    /// Check the core's whole bookkeeping every N steps (it costs a walk over all tasks).
    #[arg(long, default_value_t = 1)]
    core_check_every: u64,
    /// At each chaos tick, the chance in 1000 that a worker's owner comes back and pauses it.
    #[arg(long, default_value_t = Faults::default().owner_return_per_mille)]
    owner_return_per_mille: u32,
    /// Keep going after a failing seed.
    #[arg(long)]
    keep_going: bool,
    /// Threads running seeds side by side (each seed stays on one thread).
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, |n| n.get()))]
    threads: usize,
}

/// Runs the seeds on `threads` threads, each taking every `threads`-th seed.
fn run_seeds(seeds: std::ops::Range<u64>, config: &SimConfig, threads: usize, keep_going: bool) -> (Stats, Vec<u64>) {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let results: Vec<(Stats, Vec<u64>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|offset| {
                let seeds = seeds.clone();
                let stop = &stop;
                scope.spawn(move || {
                    let mut total = Stats::default();
                    let mut failed = Vec::new();
                    for seed in seeds.skip(offset as usize).step_by(threads) {
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                        let outcome = run(seed, config);
                        for line in &outcome.trace {
                            println!("{line}");
                        }
                        total.add(&outcome.stats);
                        if let Some(violation) = outcome.violation {
                            println!("seed {seed} FAILED: {violation}");
                            println!("  replay: cargo run --release --bin iog-sim -- --seed {seed} --trace");
                            failed.push(seed);
                            if !keep_going {
                                stop.store(true, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                    }
                    (total, failed)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a simulation thread panicked")).collect()
    });
    let mut total = Stats::default();
    let mut failed = Vec::new();
    for (stats, seeds) in results {
        total.add(&stats);
        failed.extend(seeds);
    }
    failed.sort_unstable();
    (total, failed)
}

fn main() -> ExitCode {
    let args = Args::parse();
    let defaults = SimConfig::default();
    let core = iog_core::Config {
        gang_reserve_ms: args.gang_reserve_ms,
        gang_retry_ms: args.gang_retry_ms,
        ..defaults.core.clone()
    };
    let config = SimConfig {
        core,
        n_workers: args.workers,
        n_jobs: args.jobs,
        tasks_per_job: args.tasks_per_job,
        gang_per_mille: args.gang_per_mille,
        core_check_every: args.core_check_every,
        trace: args.trace,
        faults: Faults { owner_return_per_mille: args.owner_return_per_mille, ..Faults::default() },
        ..defaults
    };
    let seeds = match args.seed {
        Some(seed) => seed..seed + 1,
        None => args.first_seed..args.first_seed + args.seeds,
    };
    let started = Instant::now();
    let n_seeds = seeds.end - seeds.start;
    let threads = if config.trace { 1 } else { args.threads.max(1) };
    let (total, failed) = run_seeds(seeds, &config, threads, args.keep_going);
    let secs = started.elapsed().as_secs_f64();
    let rate = n_seeds as f64 / secs;
    // Large networks run under one seed per second; show them a figure too.
    let decimals = if rate < 10.0 { 2 } else { 0 };
    println!(
        "{n_seeds} seeds x {} workers x {} jobs of up to {} tasks in {secs:.1} s: {rate:.decimals$} seeds/s, \
         {} steps, {} failed",
        args.workers,
        args.jobs,
        args.tasks_per_job,
        total.steps,
        failed.len()
    );
    println!(
        "faults: {} messages dropped, {} duplicated, {} partitions, {} worker crashes ({} lost their data dir), \
         {} coordinator crashes ({} between deciding and writing), {} clock jumps, {} task failures, \
         {} owner returns ({} tasks yielded); {} stale results refused",
        total.dropped,
        total.duplicated,
        total.partitions,
        total.worker_crashes,
        total.worker_wipes,
        total.coordinator_crashes,
        total.crashes_before_persist,
        total.clock_jumps,
        total.task_failures,
        total.owner_returns,
        total.tasks_yielded,
        total.stale_results
    );
    println!(
        "jobs: {} done, {} failed ({} of them when their escrow was spent), {} cancelled; {} tasks committed, \
         {} paid from escrow",
        total.jobs_done, total.jobs_failed, total.escrows_spent, total.jobs_cancelled, total.commits, total.tasks_paid
    );
    println!(
        "gangs: {} gang jobs ({} done), {} gang restarts ({} members stopped with their gang)",
        total.gang_jobs, total.gang_jobs_done, total.gang_restarts, total.gang_yields
    );
    println!(
        "challenges: {} rounds answered, {} failed; {} leases lapsed at their job's task timeout",
        total.challenges, total.challenges_failed, total.task_timeouts
    );
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
