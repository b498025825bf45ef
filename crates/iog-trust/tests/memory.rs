//! The memory challenge: an honest fill answers the walk, a worker keeping
//! part of the memory answers the same (only slower), wrong chunks are
//! caught as often as the number of checked steps says, a walk split to
//! run on several cores at once is caught, malformed answers are errors,
//! and the trade-off figures in the documentation are the formula's.

use iog_trust::Seed;
use iog_trust::memory::{
    self, CHUNK_BYTES, MemoryAnswer, MemoryChallenge, MemoryCheckError, MemoryCommitment, MemoryOpening,
    MemoryParamsError, WalkSplit,
};
use proptest::prelude::*;

const MIB: u64 = 1 << 20;

fn seed(byte: u8) -> Seed {
    [byte; 32]
}

fn challenge(memory_bytes: u64, chunks_per_block: u32, n_probes: u32) -> MemoryChallenge {
    MemoryChallenge { seed: seed(1), memory_bytes, chunks_per_block, n_probes }
}

/// The whole exchange for an honest worker: fill, walk, commit, open.
fn honest(
    challenge: &MemoryChallenge,
    probe_seed: &Seed,
    check_seed: &Seed,
    n_checked: u32,
) -> (MemoryCommitment, MemoryAnswer) {
    let walk = memory::fill(challenge).unwrap().walk(probe_seed);
    (walk.commitment(), walk.open(check_seed, n_checked))
}

#[test]
fn honest_fill_answers_the_walk() {
    let challenge = challenge(4 * MIB + 1000, 1 << 12, 2000);
    assert_eq!(challenge.filled_bytes(), 4 * MIB);
    let walk = memory::fill(&challenge).unwrap().walk(&seed(2));
    // Checking a sample and checking the most a check may open both pass.
    for (check_seed, n_checked) in [(seed(3), 16), (seed(4), memory::CHECKED_MAX)] {
        let answer = walk.open(&check_seed, n_checked);
        memory::check(&challenge, &seed(2), &walk.commitment(), &check_seed, n_checked, &answer).unwrap();
    }
    // A walk shorter than the checks asked for opens every step.
    let short = MemoryChallenge { n_probes: 40, ..challenge.clone() };
    let (commitment, answer) = honest(&short, &seed(2), &seed(3), 64);
    assert_eq!(answer.openings.len(), 5, "40 steps are five leaves of 8");
    memory::check(&short, &seed(2), &commitment, &seed(3), 64, &answer).unwrap();
}

#[test]
fn the_walk_reads_the_chunk_the_seed_defines() {
    let challenge = challenge(MIB, 1 << 8, 50);
    let (_, answer) = honest(&challenge, &seed(5), &seed(1), 50);
    let chunks: Vec<[u8; CHUNK_BYTES]> = answer.openings.iter().flat_map(|o| o.chunks.clone()).collect();
    assert_eq!(chunks.len(), 50);
    // The same walk over memory rebuilt from the seed at each position.
    let mut positions = Vec::new();
    let rebuilt = memory::walk_with(&challenge, &seed(5), |_, position| {
        assert!(position.block_idx < challenge.n_blocks());
        assert!(position.chunk_idx < challenge.chunks_per_block);
        positions.push(position);
        memory::chunk(&challenge.seed, position.block_idx, position.chunk_idx)
    });
    assert_eq!(rebuilt.open(&seed(1), 50), answer);
    assert_eq!(positions.len(), 50);
    // Another probe seed walks elsewhere.
    assert_ne!(answer, honest(&challenge, &seed(6), &seed(1), 50).1);
}

#[test]
fn a_worker_keeping_part_of_the_memory_answers_right_from_less() {
    let challenge = challenge(MIB, 1 << 8, 3000);
    let honest_walk = memory::fill(&challenge).unwrap().walk(&seed(2));
    for keep_every in [1, 7, 64, 1 << 8, 1 << 12] {
        let sparse = memory::SparseFill::new(&challenge, keep_every).unwrap();
        assert_eq!(sparse.held_bytes(), u64::from((1u32 << 8).div_ceil(keep_every)) * challenge.n_blocks() * 32);
        let walk = sparse.walk(&seed(2));
        assert_eq!(walk.commitment(), honest_walk.commitment(), "keep_every {keep_every}");
    }
}

#[test]
fn a_changed_chunk_is_caught_when_checked() {
    let challenge = challenge(MIB, 1 << 8, 64);
    let (commitment, answer) = honest(&challenge, &seed(2), &seed(3), 64);
    // Every step is checked, so every leaf is opened.
    assert_eq!(answer.openings.len(), 64 / memory::STEPS_PER_LEAF as usize);
    for step in [0u32, 17, 63] {
        let leaf = (step / memory::STEPS_PER_LEAF) as usize;
        let mut bad = answer.clone();
        bad.openings[leaf].chunks[(step % memory::STEPS_PER_LEAF) as usize][5] ^= 0x40;
        // The changed leaf no longer leads to the root.
        let refused = memory::check(&challenge, &seed(2), &commitment, &seed(3), 64, &bad).unwrap_err();
        assert!(matches!(refused, MemoryCheckError::BadProof { leaf_idx, .. } if leaf_idx == leaf as u32), "{refused}");
        // A worker that walks on from the changed chunk and commits to that
        // walk is caught where it changed it.
        let (commitment, bad) = wrong_at(&challenge, &seed(2), &[step], &seed(3), 64);
        let refused = memory::check(&challenge, &seed(2), &commitment, &seed(3), 64, &bad).unwrap_err();
        assert!(matches!(refused, MemoryCheckError::WrongChunk { step: failed, .. } if failed == step), "{refused}");
    }
}

/// A worker that answers `wrong_steps` with garbage and walks on from the
/// garbage, so every later position is consistent with what it committed
/// to; only checking a garbage step catches it.
fn wrong_at(
    challenge: &MemoryChallenge,
    probe_seed: &Seed,
    wrong_steps: &[u32],
    check_seed: &Seed,
    n_checked: u32,
) -> (MemoryCommitment, MemoryAnswer) {
    let walk = memory::walk_with(challenge, probe_seed, |step, position| {
        let mut chunk = memory::chunk(&challenge.seed, position.block_idx, position.chunk_idx);
        if wrong_steps.contains(&step) {
            chunk[0] ^= 1;
        }
        chunk
    });
    (walk.commitment(), walk.open(check_seed, n_checked))
}

#[test]
fn a_partial_cheater_passes_about_f_to_the_checks() {
    const N_TRIALS: u32 = 400;
    const N_CHECKED: u32 = 5;
    let challenge = challenge(MIB, 1 << 8, 100);
    // 15 of 100 steps wrong: f = 0.85, passes with C(85,5)/C(100,5) ≈ 0.436
    // (checked steps are distinct, so it is drawing without replacement).
    let wrong: Vec<u32> = (0..15).map(|idx| idx * 6 + 1).collect();
    let passed = (0..N_TRIALS)
        .filter(|trial| {
            let mut check_seed = [0u8; 32];
            check_seed[..4].copy_from_slice(&trial.to_le_bytes());
            let (commitment, answer) = wrong_at(&challenge, &seed(2), &wrong, &check_seed, N_CHECKED);
            memory::check(&challenge, &seed(2), &commitment, &check_seed, N_CHECKED, &answer).is_ok()
        })
        .count();
    let want: f64 = (0..N_CHECKED).map(|idx| f64::from(85 - idx) / f64::from(100 - idx)).product();
    let got = passed as f64 / f64::from(N_TRIALS);
    let tolerance = 4.0 * (want * (1.0 - want) / f64::from(N_TRIALS)).sqrt();
    assert!((got - want).abs() < tolerance, "pass rate {got}, want {want}");
}

/// Passes of a split walk over `n_trials` check seeds with `n_checked` checks.
fn split_passes(challenge: &MemoryChallenge, split: WalkSplit, n_trials: u32, n_checked: u32) -> u32 {
    let fill = memory::fill(challenge).unwrap();
    let walk = fill.walk_split(&seed(2), split);
    (0..n_trials)
        .filter(|trial| {
            let mut check_seed = [9u8; 32];
            check_seed[..4].copy_from_slice(&trial.to_le_bytes());
            let answer = walk.open(&check_seed, n_checked);
            memory::check(challenge, &seed(2), &walk.commitment(), &check_seed, n_checked, &answer).is_ok()
        })
        .count() as u32
}

/// For `n_trials` check seeds of one check each: the step checked and
/// whether the split walk passed.
fn single_checks(challenge: &MemoryChallenge, split: WalkSplit, n_trials: u32) -> Vec<(u32, bool)> {
    let fill = memory::fill(challenge).unwrap();
    let walk = fill.walk_split(&seed(2), split);
    (0..n_trials)
        .map(|trial| {
            let mut check_seed = [7u8; 32];
            check_seed[..4].copy_from_slice(&trial.to_le_bytes());
            let step = memory::checked_steps(challenge.n_probes, &check_seed, 1)[0];
            let answer = walk.open(&check_seed, 1);
            let passed = memory::check(challenge, &seed(2), &walk.commitment(), &check_seed, 1, &answer).is_ok();
            (step, passed)
        })
        .collect()
}

#[test]
fn a_walk_computed_in_pieces_at_once_fails_at_every_later_piece() {
    let challenge = challenge(MIB, 1 << 8, 4096);
    assert_eq!(split_passes(&challenge, WalkSplit::default(), 50, 64), 50, "the unsplit walk is honest");
    // 4096 steps are 512 leaves: pieces of 256 leaves (2048 steps) or of 32
    // (256 steps). Every step past the first piece fails its check, not
    // only the joins: each of its leaves was keyed without the roots of the
    // leaves before the piece. Every step of the first piece passes.
    for (n_pieces, first_piece_steps) in [(2, 2048), (16, 256)] {
        let split = WalkSplit { n_pieces, split_leaves: false };
        for (step, passed) in single_checks(&challenge, split, 300) {
            assert_eq!(passed, step < first_piece_steps, "{n_pieces} pieces, step {step}");
        }
        // So 64 checks all land in the first piece with probability below 2^-64.
        assert_eq!(split_passes(&challenge, split, 100, 64), 0, "{n_pieces} pieces");
    }
}

#[test]
fn a_walk_split_inside_each_leaf_is_caught_at_its_joins() {
    // Each leaf's second half starts from a made-up chunk: only the joins
    // (step 4 of each 8-step leaf) are wrong, so one check passes with
    // probability 7/8 and 64 checks with (7/8)^64 ≈ 2 · 10^-4.
    let challenge = challenge(MIB, 1 << 8, 4096);
    let split = WalkSplit { n_pieces: 1, split_leaves: true };
    let outcomes = single_checks(&challenge, split, 400);
    for &(step, passed) in &outcomes {
        assert_eq!(passed, step % memory::STEPS_PER_LEAF != memory::STEPS_PER_LEAF / 2, "step {step}");
    }
    assert!(outcomes.iter().any(|&(_, passed)| !passed) && outcomes.iter().any(|&(_, passed)| passed));
    // 200 rounds of 64 checks expect 0.04 passes.
    assert!(split_passes(&challenge, split, 200, 64) <= 2);
}

#[test]
fn checked_steps_are_distinct_uniform_and_within_the_walk() {
    let mut counts = vec![0u32; 64];
    for trial in 0u32..2000 {
        let mut check_seed = [0u8; 32];
        check_seed[..4].copy_from_slice(&trial.to_le_bytes());
        let steps = memory::checked_steps(64, &check_seed, 8);
        assert_eq!(steps.len(), 8);
        assert!(steps.windows(2).all(|pair| pair[0] < pair[1]), "{steps:?}");
        for step in steps {
            counts[step as usize] += 1;
        }
    }
    // Each step is checked with probability 1/8: 250 of 2000 expected.
    assert!(counts.iter().all(|&count| (170..=330).contains(&count)), "{counts:?}");
    // A long walk costs no more than its checks.
    assert_eq!(memory::checked_steps(memory::PROBES_MAX, &seed(1), 64).len(), 64);
}

#[test]
fn malformed_answers_are_errors() {
    let challenge = challenge(MIB, 1 << 8, 300);
    let (commitment, answer) = honest(&challenge, &seed(2), &seed(3), 10);
    let check = |answer: &MemoryAnswer| memory::check(&challenge, &seed(2), &commitment, &seed(3), 10, answer);
    check(&answer).unwrap();
    let mut short = answer.clone();
    short.openings.pop();
    assert!(matches!(check(&short), Err(MemoryCheckError::OpeningCount { .. })));
    let mut shifted = answer.clone();
    shifted.openings[0].leaf_idx += 1;
    assert!(matches!(check(&shifted), Err(MemoryCheckError::WrongLeaf { idx: 0, .. })));
    let mut truncated = answer.clone();
    truncated.openings[0].chunks.pop();
    assert!(matches!(check(&truncated), Err(MemoryCheckError::LeafLength { .. })));
    let mut long_proof = answer.clone();
    long_proof.openings[0].proof.push([0; 32]);
    assert!(matches!(check(&long_proof), Err(MemoryCheckError::BadProof { .. })));
    let other_root = MemoryCommitment { root: [7; 32] };
    assert!(matches!(
        memory::check(&challenge, &seed(2), &other_root, &seed(3), 10, &answer),
        Err(MemoryCheckError::BadProof { .. })
    ));
    for n_checked in [0, memory::CHECKED_MAX + 1] {
        assert_eq!(
            memory::check(&challenge, &seed(2), &commitment, &seed(3), n_checked, &answer).unwrap_err(),
            MemoryCheckError::Params(MemoryParamsError::Checked(n_checked))
        );
    }
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
        let answer = MemoryAnswer { openings: Vec::new() };
        let commitment = MemoryCommitment { root: [0; 32] };
        assert_eq!(
            memory::check(&challenge, &seed(2), &commitment, &seed(3), 1, &answer).unwrap_err(),
            MemoryCheckError::Params(want)
        );
    }
}

#[test]
fn the_trade_off_table_in_the_docs_is_the_formula() {
    // Rows of the module documentation's table: (P, N, k*), t = 50 ns,
    // a = 3 µs, M = 10 ms, slack the whole deadline.
    let rows = [
        (1 << 15, 20, 158.0),
        (1 << 15, 200, 378.0),
        (1 << 15, 1000, 1355.0),
        (1 << 18, 20, 126.0),
        (1 << 18, 200, 153.0),
        (1 << 18, 1000, 275.0),
        (1 << 20, 20, 122.0),
        (1 << 20, 200, 129.0),
        (1 << 20, 1000, 160.0),
    ];
    for (n_probes, network_ms, want) in rows {
        let slack_ms = memory::probe_deadline_ms(n_probes, network_ms) as f64;
        let got = memory::cheat_factor_caught(n_probes, slack_ms, memory::CHEATER_HASH_NS);
        assert!((got - want).abs() <= 0.5, "P {n_probes}, N {network_ms}: k* {got}, docs say {want}");
    }
    // The floor for long walks: 2a/t + 1.
    let floor = 2.0 * memory::STEP_ALLOWANCE_NS as f64 / memory::CHEATER_HASH_NS + 1.0;
    assert_eq!(floor, 121.0);
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
        let (commitment, answer) = honest(&challenge, &[probe_byte; 32], &[3; 32], n_probes.min(memory::CHECKED_MAX));
        prop_assert!(memory::check(&challenge, &[probe_byte; 32], &commitment, &[3; 32], n_probes.min(memory::CHECKED_MAX), &answer).is_ok());
    }

    #[test]
    fn garbage_answers_are_errors_not_panics(n_openings in 0usize..12, len in 0usize..40, proof_len in 0usize..8, byte in any::<u8>(), leaf in 0u32..5) {
        let challenge = challenge(MIB, 1 << 8, 100);
        let opening = MemoryOpening { leaf_idx: leaf, chunks: vec![[byte; 32]; len], proof: vec![[byte; 32]; proof_len] };
        let answer = MemoryAnswer { openings: vec![opening; n_openings] };
        let commitment = MemoryCommitment { root: [byte; 32] };
        prop_assert!(memory::check(&challenge, &seed(2), &commitment, &seed(3), 100, &answer).is_err());
    }
}
