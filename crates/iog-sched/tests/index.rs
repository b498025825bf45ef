//! Laws of the placement index, checked against a brute-force search over
//! the same fleet after every step of random histories.

use iog_ledger::Amount;
use iog_sched::index::{EntryTerms, Index};
use iog_sched::{DeviceGroup, EntryId, Requirements};
use iog_types::DeviceKind;
use proptest::prelude::*;

const MODELS: [&str; 4] = ["RTX 4090", "A100 80GB", "H100", "EPYC"];
const REGIONS: [&str; 3] = ["eu", "us-east", "asia"];

#[derive(Debug, Clone)]
enum Step {
    Insert { model: usize, count: u32, region: usize, trust: u8, price: u64, reputation: u16, rtt_ms: u32 },
    Take { pick: usize, n: u32 },
    GiveBack { pick: usize, n: u32 },
    Available { pick: usize, available: bool },
    Remove { pick: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..4usize, 1..12u32, 0..3usize, 0..3u8, 0..5u64, 0..=1000u16, 0..200u32).prop_map(
            |(model, count, region, trust, price, reputation, rtt_ms)| Step::Insert { model, count, region, trust, price, reputation, rtt_ms }
        ),
        3 => (any::<usize>(), 1..4u32).prop_map(|(pick, n)| Step::Take { pick, n }),
        2 => (any::<usize>(), 1..4u32).prop_map(|(pick, n)| Step::GiveBack { pick, n }),
        1 => (any::<usize>(), any::<bool>()).prop_map(|(pick, available)| Step::Available { pick, available }),
        1 => any::<usize>().prop_map(|pick| Step::Remove { pick }),
    ]
}

fn requirements() -> impl Strategy<Value = Requirements> {
    (
        prop::option::of(prop_oneof![Just(DeviceKind::Gpu), Just(DeviceKind::Cpu)]),
        1..11u32,
        prop_oneof![Just(0u64), Just(24u64 << 30), Just(80u64 << 30)],
        prop::collection::vec(prop_oneof![Just("a100"), Just("4090"), Just("H1")], 0..2),
        prop::collection::vec(0..3usize, 0..2),
        prop::option::of(0..5u64),
        0..3u8,
        any::<bool>(),
    )
        .prop_map(|(kind, count, memory_bytes_min, models, regions, price, trust_min, wasm)| Requirements {
            kind,
            count,
            memory_bytes_min,
            models: models.into_iter().map(str::to_owned).collect(),
            regions: regions.into_iter().map(|r| REGIONS[r].to_owned()).collect(),
            price_io_per_device_hour_max: price.map(|p| Amount::from_base_units(p * 250_000_000)),
            trust_min,
            gang_latency_ms_max: None,
            software: if wasm { vec!["wasm".to_owned()] } else { Vec::new() },
            replicas_same_model: false,
        })
}

fn group(model: usize, count: u32) -> DeviceGroup {
    let (kind, memory_gib) = match model {
        0 => (DeviceKind::Gpu, 24),
        1 => (DeviceKind::Gpu, 80),
        2 => (DeviceKind::Gpu, 94),
        _ => (DeviceKind::Cpu, 64),
    };
    DeviceGroup {
        kind,
        model: MODELS[model].to_owned(),
        memory_bytes: memory_gib << 30,
        count,
        compute_capability: None,
        driver: None,
        kernels: false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// `find` never returns an entry that breaks a hard constraint, returns
    /// something whenever some entry fits, and returns the best-ranked one.
    #[test]
    fn find_is_exact_and_never_breaks_a_constraint(
        steps in prop::collection::vec(step(), 1..80),
        wanted in prop::collection::vec(requirements(), 1..6),
    ) {
        let mut index: Index<u32> = Index::default();
        let classes: Vec<_> = wanted.iter().map(|req| index.class(req)).collect();
        let mut live: Vec<EntryId> = Vec::new();
        let mut next_owner = 0u32;
        for step in steps {
            match step {
                Step::Insert { model, count, region, trust, price, reputation, rtt_ms } => {
                    let terms = EntryTerms {
                        region: REGIONS[region].to_owned(),
                        price_io_per_device_hour: Amount::from_base_units(price * 250_000_000),
                        trust,
                        reputation_milli: reputation,
                        rtt_ms,
                        // Every other worker runs wasm.
                        software: if next_owner.is_multiple_of(2) { vec!["wasm".to_owned()] } else { Vec::new() },
                    };
                    live.push(index.insert(next_owner, group(model, count), terms, 0, true));
                    next_owner += 1;
                }
                Step::Take { pick, n } if !live.is_empty() => index.take(live[pick % live.len()], n),
                Step::GiveBack { pick, n } if !live.is_empty() => index.give_back(live[pick % live.len()], n),
                Step::Available { pick, available } if !live.is_empty() => {
                    index.set_available(live[pick % live.len()], available)
                }
                Step::Remove { pick } if !live.is_empty() => {
                    let entry = live.swap_remove(pick % live.len());
                    index.remove(entry);
                }
                _ => {}
            }
            index.check().map_err(TestCaseError::fail)?;
            for (req, class) in wanted.iter().zip(&classes) {
                let fitting: Vec<EntryId> = index
                    .iter()
                    .filter(|(_, e)| {
                        e.available
                            && req.fits(e.group, e.group.count.saturating_sub(e.used), &e.terms.region, e.terms.trust, e.terms.price_io_per_device_hour, &e.terms.software)
                    })
                    .map(|(id, _)| id)
                    .collect();
                match index.find(*class) {
                    None => prop_assert!(fitting.is_empty(), "{req:?}: nothing found but {fitting:?} fit"),
                    Some(found) => {
                        prop_assert!(fitting.contains(&found.entry), "{req:?}: found {found:?}, which does not fit");
                        let best = fitting.iter().map(|id| index.rank_of(*id).unwrap()).min().unwrap();
                        prop_assert_eq!(index.rank_of(found.entry).unwrap(), best);
                    }
                }
            }
        }
    }
}
