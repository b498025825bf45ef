//! `iog-bench heartbeats`: the coordinator core alone at fleet scale, one core.
//!
//! `--workers` simulated workers join (each a CPU offer of one slot), then
//! every worker heartbeats once per interval (the default 5 s) for
//! `--rounds` intervals of virtual time, in a shuffled order; the core's
//! tick runs every 100 ms of virtual time as the engine's does. The wall
//! time spent in `Core::handle` gives heartbeats absorbed per second. Then
//! 1 % of the workers fall silent: the bench reports after how much virtual
//! time the core declared each of them dead (the bound is the worker
//! timeout, interval × missed heartbeats, plus one tick) and how long the
//! tick that did it took.

use std::time::{Duration, Instant};

use iog_core::{Action, Config, Core, Event};
use iog_sched::Offer;
use iog_types::WorkerId;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

const TICK_MS: u64 = 100;

/// One run's figures.
#[derive(Debug, serde::Serialize)]
pub struct Figures {
    pub workers: usize,
    pub heartbeats: u64,
    pub heartbeats_per_s: f64,
    pub ns_per_heartbeat: f64,
    pub join_per_s: f64,
    pub silent_workers: usize,
    pub detected: usize,
    pub detection_ms_min: u64,
    pub detection_ms_max: u64,
    pub detection_bound_ms: u64,
    pub slowest_tick_ms: f64,
}

pub fn run(n_workers: usize, rounds: u32, seed: u64) -> Figures {
    let config = Config::default();
    let interval_ms = config.heartbeat_interval_ms;
    let bound_ms = config.worker_timeout_ms() + TICK_MS;
    let mut core = Core::new(config);
    let ids: Vec<WorkerId> = (0..n_workers).map(|i| WorkerId(format!("w{i:07}"))).collect();
    let mut now = 1_000_000u64;
    let joined = Instant::now();
    for id in &ids {
        core.handle(
            Event::WorkerConnected { worker_id: id.clone(), offer: Offer::cpu(1), trust: 0, running: vec![] },
            now,
        );
    }
    let join_s = joined.elapsed().as_secs_f64();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut order: Vec<usize> = (0..n_workers).collect();
    let mut busy = Duration::ZERO;
    let mut heartbeats = 0u64;
    let mut last_heard: Vec<u64> = vec![now; n_workers];
    let per_tick = (n_workers as u64 * TICK_MS / interval_ms).max(1) as usize;
    for _ in 0..rounds {
        order.shuffle(&mut rng);
        for chunk in order.chunks(per_tick) {
            now += TICK_MS;
            let started = Instant::now();
            for &idx in chunk {
                core.handle(Event::Heartbeat { worker_id: ids[idx].clone(), held: vec![] }, now);
            }
            core.handle(Event::Tick, now);
            busy += started.elapsed();
            heartbeats += chunk.len() as u64;
            for &idx in chunk {
                last_heard[idx] = now;
            }
        }
    }
    // 1 % fall silent; the rest keep heartbeating.
    let n_silent = (n_workers / 100).max(1);
    order.shuffle(&mut rng);
    let silent: std::collections::HashSet<usize> = order[..n_silent].iter().copied().collect();
    let mut detected = Vec::new();
    let mut slowest_tick = Duration::ZERO;
    let give_up = now + 3 * bound_ms;
    let mut next = 0usize;
    while detected.len() < n_silent && now < give_up {
        now += TICK_MS;
        for _ in 0..per_tick {
            let idx = order[n_silent + next % (n_workers - n_silent).max(1)];
            next += 1;
            if silent.contains(&idx) {
                continue;
            }
            core.handle(Event::Heartbeat { worker_id: ids[idx].clone(), held: vec![] }, now);
            last_heard[idx] = now;
        }
        let started = Instant::now();
        let actions = core.handle(Event::Tick, now);
        slowest_tick = slowest_tick.max(started.elapsed());
        for action in actions {
            if let Action::WorkerDead { worker_id } = action {
                let idx: usize = worker_id.0[1..].parse().expect("bench worker ids are numbered");
                detected.push(now - last_heard[idx]);
            }
        }
    }
    let busy_s = busy.as_secs_f64();
    Figures {
        workers: n_workers,
        heartbeats,
        heartbeats_per_s: heartbeats as f64 / busy_s,
        ns_per_heartbeat: busy_s * 1e9 / heartbeats as f64,
        join_per_s: n_workers as f64 / join_s,
        silent_workers: n_silent,
        detected: detected.len(),
        detection_ms_min: detected.iter().copied().min().unwrap_or(0),
        detection_ms_max: detected.iter().copied().max().unwrap_or(0),
        detection_bound_ms: bound_ms,
        slowest_tick_ms: slowest_tick.as_secs_f64() * 1e3,
    }
}
