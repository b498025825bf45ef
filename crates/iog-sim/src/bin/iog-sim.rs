//! `iog-sim`: runs seeded whole-network simulations.
//!
//! ```text
//! iog-sim --seeds 10000                 # seeds 0..10000, report seeds/s and failures
//! iog-sim --seed 42 --trace             # replay one seed step by step
//! iog-sim --seeds 100 --workers 1000 --jobs 10 --tasks-per-job 1000
//! iog-sim --cheats --seeds 0..2000          # measure verification against cheating workers
//! ```

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use iog_sim::{CheatClass, Cheats, Faults, Policy, SimConfig, Stats, VerifyMix, run};

#[derive(Debug, Parser)]
#[command(name = "iog-sim", about = "Seeded whole-network simulation of iog under faults")]
struct Args {
    /// How many seeds to run from `first-seed` ("1000"), or a range of
    /// seeds ("0..2000").
    #[arg(long, default_value = "1000")]
    seeds: SeedRange,
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
    /// Jobs that are chained (tasks made one after another), per mille.
    #[arg(long, default_value_t = SimConfig::default().chained_per_mille)]
    chained_per_mille: u32,
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
    /// The share of workers that cheat, in parts per thousand (rounded to
    /// whole workers).
    #[arg(long, default_value_t = Cheats::default().cheater_per_mille)]
    cheater_per_mille: u32,
    /// Jobs that verify by `replicate 2 of 5`, in parts per thousand.
    #[arg(long, default_value_t = VerifyMix::default().replicate_per_mille)]
    replicate_per_mille: u32,
    /// Jobs that verify by `adaptive of 5`, in parts per thousand.
    #[arg(long, default_value_t = VerifyMix::default().adaptive_per_mille)]
    adaptive_per_mille: u32,
    /// Jobs that verify by `spot of 5`, in parts per thousand.
    #[arg(long, default_value_t = VerifyMix::default().spot_per_mille)]
    spot_per_mille: u32,
    /// Measure verification against cheating workers: per policy and cheat
    /// class, wrong results caught and accepted; the runs verification
    /// costs; honest workers judged wrong. Then a long adaptive run (see
    /// --long-*) at 0 %, 5 % and 10 % cheaters. Fault-free unless --with-faults.
    #[arg(long)]
    cheats: bool,
    /// With --cheats: keep the default faults on.
    #[arg(long)]
    with_faults: bool,
    /// With --cheats: seeds of each long adaptive run.
    #[arg(long, default_value_t = 20)]
    long_seeds: u64,
    /// With --cheats: workers of the long adaptive run.
    #[arg(long, default_value_t = 20)]
    long_workers: u32,
    /// With --cheats: tasks of the long adaptive run, shared by its jobs.
    #[arg(long, default_value_t = 3_000)]
    long_tasks: u32,
    /// With --cheats: jobs of the long adaptive run.
    #[arg(long, default_value_t = 30)]
    long_jobs: u32,
    /// With --cheats: the long adaptive run's jobs are submitted at random
    /// within this many ms, so that, as in a long-lived network, workers
    /// carry their streaks from job to job.
    #[arg(long, default_value_t = 60_000)]
    long_submit_ms: u64,
}

/// Seeds to run: `N` (from `--first-seed`) or `A..B`.
#[derive(Debug, Clone)]
enum SeedRange {
    Count(u64),
    Range(std::ops::Range<u64>),
}

impl std::str::FromStr for SeedRange {
    type Err = String;

    fn from_str(text: &str) -> Result<SeedRange, String> {
        let number = |part: &str| part.trim().parse::<u64>().map_err(|err| format!("{part:?}: {err}"));
        match text.split_once("..") {
            Some((start, end)) => Ok(SeedRange::Range(number(start)?..number(end)?)),
            None => Ok(SeedRange::Count(number(text)?)),
        }
    }
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
                            println!("  replay: cargo run --release -p iog-sim --bin iog-sim -- --seed {seed} --trace");
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
        chained_per_mille: args.chained_per_mille,
        core_check_every: args.core_check_every,
        trace: args.trace,
        faults: Faults { owner_return_per_mille: args.owner_return_per_mille, ..Faults::default() },
        verify: VerifyMix {
            replicate_per_mille: args.replicate_per_mille,
            adaptive_per_mille: args.adaptive_per_mille,
            spot_per_mille: args.spot_per_mille,
            ..VerifyMix::default()
        },
        cheats: Cheats { cheater_per_mille: args.cheater_per_mille, ..Cheats::default() },
        ..defaults
    };
    let seeds = match (args.seed, &args.seeds) {
        (Some(seed), _) => seed..seed + 1,
        (None, SeedRange::Count(n)) => args.first_seed..args.first_seed + n,
        (None, SeedRange::Range(range)) => range.clone(),
    };
    if args.cheats {
        return measure_cheats(&args, config, seeds);
    }
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
    let wrong: Vec<String> = Policy::ALL
        .iter()
        .map(|policy| {
            let counts = total.verify.wrong_under(*policy);
            format!(
                "{} {} committed, {} caught, {} accepted",
                policy.name(),
                counts.committed,
                counts.caught,
                counts.accepted()
            )
        })
        .collect();
    println!(
        "verification: {} tasks settled by {} accepted results; wrong results: {}; {} honest workers judged wrong",
        total.tasks_settled,
        total.results_accepted,
        wrong.join("; "),
        total.verify.honest_slashed
    );
    if failed.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}

/// The long run checks the core's whole bookkeeping this seldom: a walk
/// over thousands of tasks at every step would dominate it.
const LONG_CORE_CHECK_EVERY: u64 = 1_000;
/// Cheater shares of the long adaptive run besides the configured one, in
/// parts per thousand.
const LONG_CHEATER_PER_MILLE: [u32; 2] = [0, 50];

/// `--cheats`: verification measured against cheating workers, as
/// markdown tables.
fn measure_cheats(args: &Args, config: SimConfig, seeds: std::ops::Range<u64>) -> ExitCode {
    let faults = if args.with_faults { config.faults.clone() } else { Faults::none() };
    let config = SimConfig { faults, ..config };
    let mut failed = Vec::new();
    if !seeds.is_empty() {
        failed.extend(measure_mix(args, &config, seeds));
    }
    if args.long_seeds > 0 {
        let mut shares = LONG_CHEATER_PER_MILLE.to_vec();
        shares.push(config.cheats.cheater_per_mille);
        shares.sort_unstable();
        shares.dedup();
        for per_mille in shares {
            failed.extend(measure_long_adaptive(args, &config, per_mille));
        }
    }
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("seeds that broke a rule: {failed:?}");
        ExitCode::FAILURE
    }
}

/// The configured job mix over `seeds`; returns the seeds that broke a rule.
fn measure_mix(args: &Args, config: &SimConfig, seeds: std::ops::Range<u64>) -> Vec<u64> {
    let started = Instant::now();
    let (total, failed) = run_seeds(seeds.clone(), config, args.threads.max(1), args.keep_going);
    println!(
        "## Job mix: seeds {}..{}, {} workers ({} cheating), {} jobs of {} tasks, {} faults ({:.1} s)\n",
        seeds.start,
        seeds.end,
        config.n_workers,
        config.cheats.n_cheaters(config.n_workers),
        config.n_jobs,
        config.tasks_per_job,
        if args.with_faults { "default" } else { "no" },
        started.elapsed().as_secs_f64()
    );
    print_detection(&total, &Policy::ALL);
    print_overhead(&total, &Policy::ALL);
    print_false_positives(&total);
    failed
}

/// A long-lived network where every job verifies adaptively, with
/// `per_mille` cheaters; returns the seeds that broke a rule.
fn measure_long_adaptive(args: &Args, config: &SimConfig, per_mille: u32) -> Vec<u64> {
    let long = SimConfig {
        n_workers: args.long_workers,
        n_jobs: args.long_jobs.max(1),
        tasks_per_job: args.long_tasks / args.long_jobs.max(1),
        // Jobs are submitted in the first half of the window.
        fault_window_ms: 2 * args.long_submit_ms,
        gang_per_mille: 0,
        core_check_every: LONG_CORE_CHECK_EVERY,
        verify: VerifyMix::only(config.verify.adaptive),
        cheats: Cheats { cheater_per_mille: per_mille, ..config.cheats.clone() },
        faults: Faults::none(),
        ..config.clone()
    };
    let started = Instant::now();
    let (total, failed) = run_seeds(0..args.long_seeds, &long, args.threads.max(1), args.keep_going);
    println!(
        "## Long adaptive run: seeds 0..{}, {} workers ({} cheating, {per_mille} per mille), {} jobs of {} tasks \
         submitted within {} s, no faults ({:.1} s)\n",
        args.long_seeds,
        long.n_workers,
        long.cheats.n_cheaters(long.n_workers),
        long.n_jobs,
        long.tasks_per_job,
        args.long_submit_ms / 1000,
        started.elapsed().as_secs_f64()
    );
    print_overhead(&total, &[Policy::Adaptive]);
    if per_mille > 0 {
        print_detection(&total, &[Policy::Adaptive]);
    }
    print_false_positives(&total);
    failed
}

/// A share as a percentage, or a dash when there is nothing to share.
fn percent(part: u64, whole: u64) -> String {
    if whole == 0 { "-".to_owned() } else { format!("{:.1} %", 100.0 * part as f64 / whole as f64) }
}

/// Per policy and cheat class: what became of the wrong results.
fn print_detection(total: &Stats, policies: &[Policy]) {
    println!(
        "| policy | cheat class | wrong committed | caught | accepted (agreeing cheats) | accepted (alone) | unjudged | detected |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|");
    for policy in policies {
        for class in CheatClass::ALL {
            let counts = total.verify.wrong_of(*policy, class);
            if counts.committed == 0 {
                continue;
            }
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |",
                policy.name(),
                class.name(),
                counts.committed,
                counts.caught,
                counts.accepted_agreeing,
                counts.accepted_alone,
                counts.unjudged(),
                percent(counts.caught, counts.caught + counts.accepted())
            );
        }
    }
    println!();
}

/// Per policy: what verification cost in runs, and how tasks settled.
fn print_overhead(total: &Stats, policies: &[Policy]) {
    println!(
        "| policy | jobs | tasks | settled | runs of settled tasks | extra runs / task | settled unchecked | jobs failed without quorum |"
    );
    println!("|---|--:|--:|--:|--:|--:|--:|--:|");
    for policy in policies {
        let counts = total.verify.policy(*policy);
        println!(
            "| {} | {} | {} | {} | {} | {:.3} | {} | {} |",
            policy.name(),
            counts.jobs,
            counts.tasks,
            counts.settled,
            counts.settled_runs,
            counts.overhead(),
            percent(counts.unchecked, counts.settled),
            counts.no_quorum
        );
    }
    println!();
}

fn print_false_positives(total: &Stats) {
    println!(
        "False positives: {} honest workers judged wrong (slashed); {} right results judged wrong in all \
         (intermittent cheats' honest ones included). Jobs: {} done, {} failed, {} cancelled.\n",
        total.verify.honest_slashed,
        total.verify.right_judged_wrong,
        total.jobs_done,
        total.jobs_failed,
        total.jobs_cancelled
    );
}
