//! The memory challenge: an honest fill answers the walk, wrong chunks are
//! caught as often as the number of checked steps says, malformed answers
//! are errors, and the trade-off figures in the documentation are the
//! formula's.

use iog_trust::Seed;
use iog_trust::memory::{self, CHUNK_BYTES, MemoryAnswer, MemoryChallenge, MemoryCheckError, MemoryParamsError};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;

fn seed(byte: u8) -> Seed {
    [byte; 32]
}

fn challenge(memory_bytes: u64, chunks_per_block: u32, n_probes: u32) -> MemoryChallenge {
    MemoryChallenge { seed: seed(1), memory_bytes, chunks_per_block, n_probes }
}

#[test]
fn honest_fill_answers_the_walk() {
    let challenge = challenge(4 * MIB + 1000, 1 << 12, 2000);
    assert_eq!(challenge.filled_bytes(), 4 * MIB);
    let fill = memory::fill(&challenge).unwrap();
    let answer = fill.answer(&seed(2));
    assert_eq!(answer.chunks.len(), 2000);
    // Checking every step and checking a sample both pass.
    memory::check(&challenge, &seed(2), &answer, &seed(3), 2000).unwrap();
    memory::check(&challenge, &seed(2), &answer, &seed(4), 16).unwrap();
    // More checks than steps means all of them.
    memory::check(&challenge, &seed(2), &answer, &seed(4), 1 << 20).unwrap();
}

#[test]
fn the_walk_reads_the_chunk_the_seed_defines() {
    let challenge = challenge(MIB, 1 << 8, 50);
    let answer = memory::fill(&challenge).unwrap().answer(&seed(5));
    let mut previous = [0u8; CHUNK_BYTES];
    for (step, got) in answer.chunks.iter().enumerate() {
        let position = memory::probe_position(&challenge, &seed(5), step as u32, &previous);
        assert!(position.block_idx < challenge.n_blocks());
        assert!(position.chunk_idx < challenge.chunks_per_block);
        assert_eq!(*got, memory::chunk(&challenge.seed, position.block_idx, position.chunk_idx));
        previous = *got;
    }
    // Another probe seed walks elsewhere.
    assert_ne!(answer, memory::fill(&challenge).unwrap().answer(&seed(6)));
}

#[test]
fn a_changed_chunk_is_caught_when_checked() {
    let challenge = challenge(MIB, 1 << 8, 300);
    let answer = memory::fill(&challenge).unwrap().answer(&seed(2));
    for step in [0usize, 17, 299] {
        let mut bad = answer.clone();
        bad.chunks[step][5] ^= 0x40;
        let refused = memory::check(&challenge, &seed(2), &bad, &seed(3), 300).unwrap_err();
        assert!(
            matches!(refused, MemoryCheckError::WrongChunk { step: failed, .. } if failed == step as u32),
            "{refused}"
        );
    }
}

/// A worker that answers a fraction of the steps with garbage and walks on
/// from the garbage, so every later position is consistent with what it
/// sent; only checking a garbage step catches it.
fn partial_cheater(challenge: &MemoryChallenge, probe_seed: &Seed, wrong_steps: &[u32]) -> MemoryAnswer {
    let mut previous = [0u8; CHUNK_BYTES];
    let chunks = (0..challenge.n_probes)
        .map(|step| {
            let position = memory::probe_position(challenge, probe_seed, step, &previous);
            previous = if wrong_steps.contains(&step) {
                [step as u8; CHUNK_BYTES]
            } else {
                memory::chunk(&challenge.seed, position.block_idx, position.chunk_idx)
            };
            previous
        })
        .collect();
    MemoryAnswer { chunks }
}

#[test]
fn a_partial_cheater_passes_about_f_to_the_checks() {
    const N_TRIALS: u32 = 400;
    const N_CHECKED: u32 = 5;
    let challenge = challenge(MIB, 1 << 8, 100);
    // 15 of 100 steps wrong: f = 0.85, passes with C(85,5)/C(100,5) ≈ 0.436
    // (checked steps are distinct, so it is drawing without replacement).
    let wrong: Vec<u32> = (0..15).map(|idx| idx * 6 + 1).collect();
    let answer = partial_cheater(&challenge, &seed(2), &wrong);
    let passed = (0..N_TRIALS)
        .filter(|trial| {
            let mut check_seed = [0u8; 32];
            check_seed[..4].copy_from_slice(&trial.to_le_bytes());
            memory::check(&challenge, &seed(2), &answer, &check_seed, N_CHECKED).is_ok()
        })
        .count();
    let want: f64 = (0..N_CHECKED).map(|idx| f64::from(85 - idx) / f64::from(100 - idx)).product();
    let got = passed as f64 / f64::from(N_TRIALS);
    let tolerance = 4.0 * (want * (1.0 - want) / f64::from(N_TRIALS)).sqrt();
    assert!((got - want).abs() < tolerance, "pass rate {got}, want {want}");
}

#[test]
fn malformed_answers_are_errors() {
    let challenge = challenge(MIB, 1 << 8, 10);
    let answer = memory::fill(&challenge).unwrap().answer(&seed(2));
    let mut short = answer.clone();
    short.chunks.pop();
    assert_eq!(
        memory::check(&challenge, &seed(2), &short, &seed(3), 10).unwrap_err(),
        MemoryCheckError::ChunkCount { got: 9, want: 10 }
    );
    let huge = MemoryAnswer { chunks: vec![[0; 32]; memory::PROBES_MAX as usize + 1] };
    assert!(matches!(
        memory::check(&challenge, &seed(2), &huge, &seed(3), 10),
        Err(MemoryCheckError::ChunkCount { .. })
    ));
    assert_eq!(
        memory::check(&challenge, &seed(2), &answer, &seed(3), 0).unwrap_err(),
        MemoryCheckError::NothingChecked
    );
}

#[test]
fn challenges_outside_the_limits_are_refused() {
    let cases = [
        (challenge(MIB, 1000, 10), MemoryParamsError::ChunksPerBlock(1000)),
        (challenge(MIB, 1 << 4, 10), MemoryParamsError::ChunksPerBlock(1 << 4)),
        (challenge(MIB, 1 << 23, 10), MemoryParamsError::ChunksPerBlock(1 << 23)),
        (challenge(1000, 1 << 8, 10), MemoryParamsError::MemoryBytes { memory_bytes: 1000, block_bytes: 8192 }),
        (
            challenge(memory::MEMORY_BYTES_MAX + 1, 1 << 8, 10),
            MemoryParamsError::MemoryBytes { memory_bytes: memory::MEMORY_BYTES_MAX + 1, block_bytes: 8192 },
        ),
        (challenge(MIB, 1 << 8, 0), MemoryParamsError::Probes(0)),
        (challenge(MIB, 1 << 8, memory::PROBES_MAX + 1), MemoryParamsError::Probes(memory::PROBES_MAX + 1)),
    ];
    for (challenge, want) in cases {
        assert_eq!(memory::fill(&challenge).unwrap_err(), want);
        let answer = MemoryAnswer { chunks: Vec::new() };
        assert_eq!(
            memory::check(&challenge, &seed(2), &answer, &seed(3), 1).unwrap_err(),
            MemoryCheckError::Params(want)
        );
    }
}

#[test]
fn the_trade_off_table_in_the_docs_is_the_formula() {
    // Rows of the module documentation's table: (P, N, k*), t = 50 ns,
    // a = 1 µs, M = 10 ms, slack the whole deadline.
    let rows = [
        (1 << 12, 20, 343.0),
        (1 << 12, 100, 1124.0),
        (1 << 15, 20, 78.0),
        (1 << 15, 100, 176.0),
        (1 << 16, 20, 60.0),
        (1 << 16, 100, 108.0),
    ];
    for (n_probes, network_ms, want) in rows {
        let slack_ms = memory::probe_deadline_ms(n_probes, network_ms) as f64;
        let got = memory::cheat_factor_caught(n_probes, slack_ms, memory::CHEATER_HASH_NS);
        assert!((got - want).abs() <= 0.5, "P {n_probes}, N {network_ms}: k* {got}, docs say {want}");
    }
    // The floor for long walks: 2a/t + 1.
    let floor = 2.0 * memory::STEP_ALLOWANCE_NS as f64 / memory::CHEATER_HASH_NS + 1.0;
    assert_eq!(floor, 41.0);
}

#[test]
fn chunks_differ_along_a_chain_and_between_blocks() {
    // Agreement with the fill is tested through the walk above.
    let s = seed(9);
    assert_ne!(memory::chunk(&s, 0, 0), memory::chunk(&s, 0, 1));
    assert_ne!(memory::chunk(&s, 0, 5), memory::chunk(&s, 1, 5));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    #[test]
    fn honest_walks_pass_for_any_seed(seed_byte in any::<u8>(), probe_byte in any::<u8>(), blocks in 1u64..6, n_probes in 1u32..200) {
        let challenge = MemoryChallenge { seed: [seed_byte; 32], memory_bytes: blocks * (1 << 8) * 32, chunks_per_block: 1 << 8, n_probes };
        let answer = memory::fill(&challenge).unwrap().answer(&[probe_byte; 32]);
        prop_assert!(memory::check(&challenge, &[probe_byte; 32], &answer, &[3; 32], n_probes).is_ok());
    }

    #[test]
    fn garbage_answers_are_errors_not_panics(len in 0usize..300, byte in any::<u8>()) {
        let challenge = challenge(MIB, 1 << 8, 100);
        let answer = MemoryAnswer { chunks: vec![[byte; 32]; len] };
        prop_assert!(memory::check(&challenge, &seed(2), &answer, &seed(3), 100).is_err());
    }
}
