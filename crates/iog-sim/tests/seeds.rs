//! Hundreds of seeded runs of the whole network under faults.

use iog_sim::{CheatClass, Cheats, Faults, Policy, SimConfig, Stats, Verify, VerifyMix, run};

fn check_seeds(seeds: std::ops::Range<u64>, config: &SimConfig) -> Stats {
    let mut total = Stats::default();
    for seed in seeds {
        let outcome = run(seed, config);
        if let Some(violation) = outcome.violation {
            panic!(
                "seed {seed}: {violation}\nreplay: cargo run --release -p iog-sim --bin iog-sim -- --seed {seed} --trace"
            );
        }
        total.add(&outcome.stats);
    }
    total
}

#[test]
fn no_rule_breaks_under_faults_across_300_seeds() {
    let total = check_seeds(0..300, &SimConfig::default());
    // The faults really happened, of every class.
    assert!(total.dropped > 0 && total.duplicated > 0 && total.partitions > 0, "{total:?}");
    assert!(total.worker_crashes > 0 && total.worker_wipes > 0 && total.coordinator_crashes > 0, "{total:?}");
    assert!(total.crashes_before_persist > 0 && total.clock_jumps > 0 && total.task_failures > 0, "{total:?}");
    assert!(total.stale_results > 0, "zombies and lapsed leases produced refused results: {total:?}");
    // Owners came back to their machines, and running tasks moved elsewhere.
    assert!(total.owner_returns > 0 && total.tasks_yielded > 0, "{total:?}");
    assert!(total.jobs_done > 0, "{total:?}");
    // Money moved on every seed, and some escrows ran dry.
    assert!(total.tasks_paid > 0 && total.escrows_spent > 0, "{total:?}");
    // Gangs ran, and some were stopped and started again together.
    assert!(total.gang_jobs > 0 && total.gang_jobs_done > 0, "{total:?}");
    assert!(total.gang_restarts > 0 && total.gang_yields >= total.gang_restarts, "{total:?}");
    // Cheats lied under every policy, and verification caught lies under
    // faults; each one it missed was counted, not broken (see the rules).
    for policy in Policy::ALL {
        assert!(total.verify.wrong_under(policy).committed > 0, "{policy:?}: {:?}", total.verify);
    }
    for policy in [Policy::Replicate, Policy::Adaptive] {
        assert!(total.verify.wrong_under(policy).caught > 0, "{policy:?}: {:?}", total.verify);
        assert!(total.verify.policy(policy).settled > 0, "{policy:?}: {:?}", total.verify);
    }
}

/// Without faults, one cheater among eight workers (the default share), of
/// every class across the seeds: a lone cheat has no one to agree with, so
/// replication catches every lie, adaptive verification every lie of a
/// cheat that always lies, and no honest worker is ever judged wrong.
#[test]
fn verification_catches_every_lie_of_a_lone_cheat() {
    // The core's own bookkeeping is checked every ten steps: what this
    // test adds is the verdicts, each of which is checked.
    let config = SimConfig { faults: Faults::none(), core_check_every: 10, ..SimConfig::default() };
    assert_eq!(config.cheats.n_cheaters(config.n_workers), 1);
    let total = check_seeds(0..200, &config);
    let verify = &total.verify;
    assert_eq!(total.tasks_settled, total.tasks, "{total:?}");
    for class in CheatClass::ALL {
        let replicated = verify.wrong_of(Policy::Replicate, class);
        assert_eq!((replicated.caught, replicated.accepted()), (replicated.committed, 0), "{class:?}: {verify:?}");
        // The simulated spot check recomputes exactly, so it misses nothing.
        let spotted = verify.wrong_of(Policy::Spot, class);
        assert_eq!((spotted.caught, spotted.accepted()), (spotted.committed, 0), "{class:?}: {verify:?}");
        let unverified = verify.wrong_of(Policy::None, class);
        assert_eq!(unverified.accepted_alone, unverified.committed, "{class:?}: {verify:?}");
    }
    for class in [CheatClass::RandomBytes, CheatClass::OtherSeed, CheatClass::Replay, CheatClass::Colluder] {
        let adaptive = verify.wrong_of(Policy::Adaptive, class);
        assert!(adaptive.committed > 0, "{class:?}: {verify:?}");
        assert_eq!((adaptive.caught, adaptive.accepted()), (adaptive.committed, 0), "{class:?}: {verify:?}");
    }
    assert_eq!((verify.honest_slashed, verify.right_judged_wrong), (0, 0), "{verify:?}");
    // Replication runs every task at least twice; adaptive less often;
    // spot checks run a task again only when a check failed.
    let (replicate, adaptive) = (verify.policy(Policy::Replicate), verify.policy(Policy::Adaptive));
    assert!(replicate.overhead() >= 1.0 && adaptive.overhead() > 0.0, "{verify:?}");
    assert!(adaptive.overhead() < replicate.overhead(), "{verify:?}");
    let spot = verify.policy(Policy::Spot);
    assert!(spot.settled > 0 && spot.overhead() < adaptive.overhead(), "{verify:?}");
}

/// Colluders that agree on one wrong output per input are the limit of
/// any quorum: where two of them fill it, their lie is accepted, and an
/// honest worker they outnumber is judged wrong. The simulator counts
/// those rather than calling them broken, and only those.
#[test]
fn agreeing_colluders_are_counted_not_broken() {
    let config = SimConfig {
        n_workers: 10,
        faults: Faults::none(),
        verify: VerifyMix::only(Verify::Replicate { replicas: 2, replicas_max: 5 }),
        cheats: Cheats { cheater_per_mille: 400, classes: vec![CheatClass::Colluder], ..Cheats::default() },
        gang_per_mille: 0,
        core_check_every: 10,
        // Four colluders in ten outvote (and so suspend) honest workers
        // often enough that an hour's suspension would leave no one to run
        // the jobs within the liveness bound; the rule is about verdicts.
        core: iog_core::Config { wrong_result_suspend_ms: 2_000, ..SimConfig::default().core },
        ..SimConfig::default()
    };
    let total = check_seeds(0..10, &config);
    let colluders = total.verify.wrong_of(Policy::Replicate, CheatClass::Colluder);
    assert!(colluders.caught > 0 && colluders.accepted_agreeing > 0, "{:?}", total.verify);
    assert_eq!(colluders.accepted_alone, 0, "{:?}", total.verify);
}

#[test]
fn a_seed_replays_bit_for_bit() {
    let config = SimConfig::default();
    for seed in [1, 7, 42] {
        let a = run(seed, &config);
        let b = run(seed, &config);
        assert!(a.violation.is_none());
        assert_eq!(a.trace_hash, b.trace_hash);
        assert_eq!(a.stats, b.stats);
    }
    assert_ne!(run(1, &config).trace_hash, run(2, &config).trace_hash);
}

#[test]
fn without_faults_every_job_is_done() {
    let config = SimConfig { faults: iog_sim::Faults::none(), ..SimConfig::default() };
    let total = check_seeds(0..50, &config);
    assert_eq!(total.jobs_failed, 0);
    assert_eq!(total.jobs_done, 50 * u64::from(config.n_jobs));
    assert_eq!(total.tasks_settled, total.tasks, "every task of every job was settled");
    // Replicas run some tasks more than once; each accepted result is paid
    // once, and no other.
    assert!(total.commits >= total.tasks && total.results_accepted >= total.tasks_settled, "{total:?}");
    assert_eq!(total.tasks_paid, total.results_accepted, "every accepted result was paid");
    assert_eq!((total.owner_returns, total.tasks_yielded), (0, 0));
    // Gangs are part of the workload, not a fault: they ran, and nothing broke them.
    assert!(total.gang_jobs > 0 && total.gang_jobs_done == total.gang_jobs, "{total:?}");
    assert_eq!((total.gang_restarts, total.gang_yields), (0, 0));
    // So are chains whose links hold several tasks (rounds of training).
    assert!(total.wide_chain_jobs > 0 && total.wide_chain_jobs_done == total.wide_chain_jobs, "{total:?}");
}

/// Owners come back often: tasks are yielded again and again, none of them
/// counted as an attempt, and every job still finishes.
#[test]
fn owners_taking_their_machines_back_cost_no_attempts() {
    let faults = iog_sim::Faults { owner_return_per_mille: 600, ..iog_sim::Faults::none() };
    let config = SimConfig { faults, ..SimConfig::default() };
    let total = check_seeds(0..50, &config);
    assert!(total.owner_returns > 100 && total.tasks_yielded > 0, "{total:?}");
    // Without other faults nothing fails, however often tasks are yielded.
    assert_eq!(total.jobs_done, 50 * u64::from(config.n_jobs), "{total:?}");
    assert_eq!(total.tasks_settled, total.tasks, "{total:?}");
    assert_eq!(total.tasks_paid, total.results_accepted, "every accepted result was paid");
    // A gang member's owner coming back stops the rest of its gang.
    assert!(total.gang_restarts > 0, "{total:?}");
}

/// Every job a gang: all its unfinished tasks run at once, on distinct
/// workers, or none do, whatever the faults.
#[test]
fn gangs_run_whole_or_not_at_all_under_faults() {
    let config = SimConfig { gang_per_mille: 1000, ..SimConfig::default() };
    let total = check_seeds(0..300, &config);
    assert_eq!(total.gang_jobs, 300 * u64::from(config.n_jobs));
    assert!(total.gang_jobs_done > 0 && total.gang_restarts > 0, "{total:?}");
}

/// A small network: gangs of one, on two workers.
#[test]
fn gangs_of_one_on_two_workers() {
    let config = SimConfig { n_workers: 2, gang_per_mille: 1000, ..SimConfig::default() };
    let total = check_seeds(0..200, &config);
    assert_eq!(total.tasks, 200 * u64::from(config.n_jobs), "{total:?}");
    assert!(total.gang_jobs_done > 0, "{total:?}");
}

/// A core bug the simulator found, kept fixed: a gang whose hold timed out
/// waits `gang_retry_ms` before it tries again, and nothing asked for a
/// placement round when that wait ended, so once the network was quiet the
/// gang waited forever with every device free ("the gang of 4 needs 4
/// distinct workers ...; 8 that fit are free now, 0 of them held for it").
/// Seed 945 of eight gang jobs hit it at the default timings; seed 19 of
/// four, with a longer wait that makes a quiet network likelier. Seed 3943
/// of the default mix hit a variant: the coordinator's clock went back
/// after the wake-up had passed, so the wait ended unnoticed again (fixed:
/// a gang passed over for its wait asks for a wake-up each time).
#[test]
fn a_gang_whose_hold_timed_out_is_placed_once_its_retry_wait_ends() {
    let config = SimConfig { gang_per_mille: 1000, n_jobs: 8, ..SimConfig::default() };
    check_seeds(945..946, &config);
    let mut config = SimConfig { gang_per_mille: 1000, ..SimConfig::default() };
    config.core.gang_retry_ms = 2_000;
    check_seeds(19..20, &config);
    // The default mix of the time verified nothing and had no cheats.
    let config = SimConfig { verify: VerifyMix::none(), cheats: Cheats::none(), ..SimConfig::default() };
    check_seeds(3943..3944, &config);
}

/// Seeds that once broke a rule, kept so the fix stays fixed:
/// - 3: an assignment lost on the network left its lease held forever by a
///   worker that kept heartbeating (fixed: heartbeats list held tasks and
///   leases missing from two in a row lapse);
/// - 5: a result lost on the network was never sent again while the worker
///   stayed connected (fixed: unacknowledged results are resent every
///   heartbeat).
#[test]
fn seeds_that_once_failed_stay_fixed() {
    // The fault mix of the time: no cancellations, default attempts. Fault
    // classes at zero draw no random numbers, so the seeds replay the
    // original runs up to where the fixes change their course.
    let faults = iog_sim::Faults {
        cancel_per_mille: 0,
        few_attempts_per_mille: 0,
        tight_budget_per_mille: 0,
        owner_return_per_mille: 0,
        ..iog_sim::Faults::default()
    };
    let config = SimConfig {
        faults,
        gang_per_mille: 0,
        verify: VerifyMix::none(),
        cheats: Cheats::none(),
        ..SimConfig::default()
    };
    check_seeds(3..4, &config);
    check_seeds(5..6, &config);
}

#[test]
fn a_large_network_keeps_every_rule() {
    let config =
        SimConfig { n_workers: 200, n_jobs: 5, tasks_per_job: 200, core_check_every: 500, ..SimConfig::default() };
    let total = check_seeds(0..3, &config);
    assert_eq!(total.jobs_done + total.jobs_failed + total.jobs_cancelled, 15);
}
