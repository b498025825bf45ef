//! `iog-bench placement`: the scheduler's index alone, on one core.
//!
//! A fleet of simulated workers with mixed offers (9 models, 10 regions,
//! trust levels 0–4, prices 0.1–2 IO per device-hour, 1–8 GPUs or a CPU with
//! 16 slots) is loaded into an [`Index`]; then tasks of eight requirement
//! classes (any GPU, ≥ 24 GiB, ≥ 40 GiB in eu, 8 × H100, ≥ 16 GiB under
//! 0.8 IO, a CPU, us regions at trust ≥ 2, 2 × ≥ 24 GiB) are placed in turn.
//! Each placement is a search plus taking the device; to keep the fleet in a
//! steady state, the oldest running task ends (its devices are given back)
//! whenever half the fleet's devices are busy.

use std::collections::VecDeque;
use std::time::Instant;

use iog_ledger::Amount;
use iog_sched::index::{EntryTerms, Index};
use iog_sched::{DeviceGroup, EntryId, Requirements};
use iog_types::DeviceKind;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const MODELS: [(&str, u64); 9] = [
    ("RTX 3060", 12),
    ("RTX 3090", 24),
    ("RTX 4090", 24),
    ("A10", 24),
    ("L4", 24),
    ("A100 40GB", 40),
    ("A100 80GB", 80),
    ("H100 80GB HBM3", 80),
    ("H200", 141),
];
const REGIONS: [&str; 10] =
    ["eu", "eu-north", "us-east", "us-west", "us-central", "asia", "asia-south", "oceania", "sa", "africa"];

/// One fleet size's figures.
#[derive(Debug, serde::Serialize)]
pub struct Figures {
    pub workers: usize,
    pub entries: usize,
    pub pools: usize,
    pub placements: u64,
    pub misses: u64,
    pub placements_per_s: f64,
    pub ns_per_placement: f64,
    pub ns_per_release: f64,
    /// A search alone (no take), over the same classes in turn.
    pub ns_per_search: f64,
}

pub fn run(n_workers: usize, n_placements: u64, seed: u64) -> Figures {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut index: Index<u32> = Index::default();
    let mut n_devices = 0u64;
    for worker in 0..n_workers as u32 {
        let (group, region) = if rng.random_bool(0.1) {
            let group = DeviceGroup {
                kind: DeviceKind::Cpu,
                model: "EPYC 9654".to_owned(),
                memory_bytes: 256 << 30,
                count: 16,
                compute_capability: None,
                driver: None,
                kernels: false,
            };
            (group, REGIONS[rng.random_range(0..REGIONS.len())])
        } else {
            let (model, gib) = MODELS[rng.random_range(0..MODELS.len())];
            let count = [1, 1, 1, 2, 4, 8][rng.random_range(0..6)];
            let group = DeviceGroup::gpu(model, gib << 30, count);
            (group, REGIONS[rng.random_range(0..REGIONS.len())])
        };
        n_devices += u64::from(group.count);
        let terms = EntryTerms {
            region: region.to_owned(),
            price_io_per_device_hour: Amount::from_base_units(rng.random_range(100_000_000..2_000_000_000)),
            trust: rng.random_range(0..5),
            reputation_milli: rng.random_range(0..=1000),
            rtt_ms: rng.random_range(5..300),
            software: Vec::new(),
        };
        index.insert(worker, group, terms, 0, true);
    }
    let gib = |n: u64| n << 30;
    let gpu = Requirements::one(DeviceKind::Gpu);
    let wanted = [
        gpu.clone(),
        Requirements { memory_bytes_min: gib(24), ..gpu.clone() },
        Requirements { memory_bytes_min: gib(40), regions: vec!["eu".to_owned()], ..gpu.clone() },
        Requirements { count: 8, models: vec!["H100".to_owned()], ..gpu.clone() },
        Requirements {
            memory_bytes_min: gib(16),
            price_io_per_device_hour_max: Some(Amount::from_base_units(800_000_000)),
            ..gpu.clone()
        },
        Requirements::one(DeviceKind::Cpu),
        Requirements { regions: vec!["us-east".to_owned(), "us-west".to_owned()], trust_min: 2, ..gpu.clone() },
        Requirements { count: 2, memory_bytes_min: gib(24), ..gpu.clone() },
    ];
    let classes: Vec<_> = wanted.iter().map(|req| index.class(req)).collect();
    let mut running: VecDeque<(EntryId, u32)> = VecDeque::new();
    let mut busy = 0u64;
    let (mut placements, mut misses) = (0u64, 0u64);
    let mut release_ns = 0u128;
    let mut n_releases = 0u64;
    let started = Instant::now();
    let mut class_idx = 0usize;
    while placements < n_placements {
        let class = classes[class_idx % classes.len()];
        let count = wanted[class_idx % classes.len()].count;
        class_idx += 1;
        match index.find(class) {
            Some(found) => {
                index.take(found.entry, count);
                running.push_back((found.entry, count));
                busy += u64::from(count);
                placements += 1;
            }
            None => misses += 1,
        }
        if busy * 2 >= n_devices {
            let release_started = Instant::now();
            // End a batch so the clock is read rarely relative to the work.
            for _ in 0..64 {
                let Some((entry, count)) = running.pop_front() else { break };
                index.give_back(entry, count);
                busy -= u64::from(count);
                n_releases += 1;
            }
            release_ns += release_started.elapsed().as_nanos();
        }
    }
    let total_ns = started.elapsed().as_nanos() as f64;
    let place_ns = total_ns - release_ns as f64;
    let searches = 1_000_000usize;
    let search_started = Instant::now();
    let mut hits = 0usize;
    for idx in 0..searches {
        hits += usize::from(index.find(classes[idx % classes.len()]).is_some());
    }
    let ns_per_search = search_started.elapsed().as_nanos() as f64 / searches as f64;
    std::hint::black_box(hits);
    Figures {
        workers: n_workers,
        entries: index.len(),
        pools: index.n_pools(),
        placements,
        misses,
        placements_per_s: placements as f64 / (place_ns / 1e9),
        ns_per_placement: place_ns / placements as f64,
        ns_per_release: release_ns as f64 / n_releases.max(1) as f64,
        ns_per_search,
    }
}
