//! The memory challenge: an honest fill answers the walk, a worker keeping
//! part of the memory answers the same (only slower), wrong chunks are
//! caught as often as the number of checked steps says, malformed answers
//! are errors, and the trade-off figures in the documentation are the
//! formula's.

use iog_trust::Seed;
use iog_trust::memory::{
    self, CHUNK_BYTES, MemoryAnswer, MemoryChallenge, MemoryCheckError, MemoryCommitment, MemoryOpening,
    MemoryParamsError,
};
use iog_trust::merkle;
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
    assert_eq!(answer.openings.len(), 2, "40 steps are two leaves");
    memory::check(&short, &seed(2), &commitment, &seed(3), 64, &answer).unwrap();
}

#[test]
fn the_walk_reads_the_chunk_the_seed_defines() {
    let challenge = challenge(MIB, 1 << 8, 50);
    let (_, answer) = honest(&challenge, &seed(5), &seed(1), 50);
    let chunks: Vec<[u8; CHUNK_BYTES]> = answer.openings.iter().flat_map(|o| o.chunks.clone()).collect();
    assert_eq!(chunks.len(), 50);
    let mut previous = [0u8; CHUNK_BYTES];
    for (step, got) in chunks.iter().enumerate() {
        let position = memory::probe_position(&challenge, &seed(5), step as u32, &previous);
        assert!(position.block_idx < challenge.n_blocks());
        assert!(position.chunk_idx < challenge.chunks_per_block);
        assert_eq!(*got, memory::chunk(&challenge.seed, position.block_idx, position.chunk_idx));
        previous = *got;
    }
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
    assert_eq!(answer.openings.len(), 2);
    for step in [0usize, 17, 63] {
        let mut bad = answer.clone();
        bad.openings[step / 32].chunks[step % 32][5] ^= 0x40;
        // The changed leaf no longer leads to the root.
        let refused = memory::check(&challenge, &seed(2), &commitment, &seed(3), 64, &bad).unwrap_err();
        assert!(
            matches!(refused, MemoryCheckError::BadProof { leaf_idx, .. } if leaf_idx == (step / 32) as u32),
            "{refused}"
        );
        // A worker that commits to the changed walk is caught by the rebuild.
        let mut walk_chunks: Vec<[u8; 32]> = answer.openings.iter().flat_map(|o| o.chunks.clone()).collect();
        walk_chunks[step][5] ^= 0x40;
        let (commitment, bad) = committed(&walk_chunks, &seed(3), 64);
        let refused = memory::check(&challenge, &seed(2), &commitment, &seed(3), 64, &bad).unwrap_err();
        assert!(
            matches!(refused, MemoryCheckError::WrongChunk { step: failed, .. } if failed == step as u32),
            "{refused}"
        );
    }
}

/// Commits to and opens an arbitrary walk, as a cheater building its own
/// tree would.
fn committed(chunks: &[[u8; CHUNK_BYTES]], check_seed: &Seed, n_checked: u32) -> (MemoryCommitment, MemoryAnswer) {
    let leaves: Vec<_> =
        chunks.chunks(memory::STEPS_PER_LEAF as usize).map(|leaf| merkle::leaf_hash(leaf.as_flattened())).collect();
    let tree = merkle::MerkleTree::new(leaves).unwrap();
    let openings = memory::opened_leaves(chunks.len() as u32, check_seed, n_checked)
        .into_iter()
        .map(|leaf_idx| {
            let start = (leaf_idx * memory::STEPS_PER_LEAF) as usize;
            let end = (start + memory::STEPS_PER_LEAF as usize).min(chunks.len());
            MemoryOpening {
                leaf_idx,
                chunks: chunks[start..end].to_vec(),
                proof: tree.proof(leaf_idx as usize).unwrap(),
            }
        })
        .collect();
    (MemoryCommitment { root: tree.root() }, MemoryAnswer { openings })
}

/// A worker that answers a fraction of the steps with garbage and walks on
/// from the garbage, so every later position is consistent with what it
/// sent; only checking a garbage step catches it.
fn partial_cheater(challenge: &MemoryChallenge, probe_seed: &Seed, wrong_steps: &[u32]) -> Vec<[u8; CHUNK_BYTES]> {
    let mut previous = [0u8; CHUNK_BYTES];
    (0..challenge.n_probes)
        .map(|step| {
            let position = memory::probe_position(challenge, probe_seed, step, &previous);
            previous = if wrong_steps.contains(&step) {
                [step as u8; CHUNK_BYTES]
            } else {
                memory::chunk(&challenge.seed, position.block_idx, position.chunk_idx)
            };
            previous
        })
        .collect()
}

#[test]
fn a_partial_cheater_passes_about_f_to_the_checks() {
    const N_TRIALS: u32 = 400;
    const N_CHECKED: u32 = 5;
    let challenge = challenge(MIB, 1 << 8, 100);
    // 15 of 100 steps wrong: f = 0.85, passes with C(85,5)/C(100,5) ≈ 0.436
    // (checked steps are distinct, so it is drawing without replacement).
    let wrong: Vec<u32> = (0..15).map(|idx| idx * 6 + 1).collect();
    let chunks = partial_cheater(&challenge, &seed(2), &wrong);
    let passed = (0..N_TRIALS)
        .filter(|trial| {
            let mut check_seed = [0u8; 32];
            check_seed[..4].copy_from_slice(&trial.to_le_bytes());
            let (commitment, answer) = committed(&chunks, &check_seed, N_CHECKED);
            memory::check(&challenge, &seed(2), &commitment, &check_seed, N_CHECKED, &answer).is_ok()
        })
        .count();
    let want: f64 = (0..N_CHECKED).map(|idx| f64::from(85 - idx) / f64::from(100 - idx)).product();
    let got = passed as f64 / f64::from(N_TRIALS);
    let tolerance = 4.0 * (want * (1.0 - want) / f64::from(N_TRIALS)).sqrt();
    assert!((got - want).abs() < tolerance, "pass rate {got}, want {want}");
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
    // a = 2 µs, M = 10 ms, slack the whole deadline.
    let rows = [
        (1 << 15, 20, 118.0),
        (1 << 15, 200, 338.0),
        (1 << 15, 1000, 1314.0),
        (1 << 18, 20, 86.0),
        (1 << 18, 200, 113.0),
        (1 << 18, 1000, 235.0),
        (1 << 20, 20, 82.0),
        (1 << 20, 200, 89.0),
        (1 << 20, 1000, 120.0),
    ];
    for (n_probes, network_ms, want) in rows {
        let slack_ms = memory::probe_deadline_ms(n_probes, network_ms) as f64;
        let got = memory::cheat_factor_caught(n_probes, slack_ms, memory::CHEATER_HASH_NS);
        assert!((got - want).abs() <= 0.5, "P {n_probes}, N {network_ms}: k* {got}, docs say {want}");
    }
    // The floor for long walks: 2a/t + 1.
    let floor = 2.0 * memory::STEP_ALLOWANCE_NS as f64 / memory::CHEATER_HASH_NS + 1.0;
    assert_eq!(floor, 81.0);
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
