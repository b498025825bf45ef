//! The compute challenge: an honest worker passes, every malformed or wrong
//! answer is refused without a panic, and a worker that got a fraction of
//! the product wrong passes about as often as `f^s` says.

use iog_trust::compute::{
    self, CHUNK_ENTRIES, ComputeAnswer, ComputeChallenge, ComputeCheckError, ComputeCommitment, ComputeParamsError,
    EntryPosition, Opening,
};
use iog_trust::merkle::{self, Hash, MerkleTree};
use iog_trust::{MerkleError, Seed};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn seed(byte: u8) -> Seed {
    [byte; 32]
}

fn challenge(n: u32, n_products: u32, n_samples: u32) -> ComputeChallenge {
    ComputeChallenge { seed: seed(1), n, n_products, n_samples }
}

/// The honest round trip: commit, answer, check.
fn round_trip(challenge: &ComputeChallenge, sample_seed: &Seed) -> (ComputeCommitment, ComputeAnswer) {
    let work = compute::commit(challenge).unwrap();
    let commitment = work.commitment();
    let answer = work.answer(sample_seed);
    (commitment, answer)
}

fn naive_entry(challenge: &ComputeChallenge, position: &EntryPosition) -> i32 {
    let a = compute::a_row(&challenge.seed, challenge.n, position.product_idx, position.row_idx);
    let b = compute::b_column(&challenge.seed, challenge.n, position.product_idx, position.col_idx);
    a.iter().zip(&b).map(|(&x, &y)| i32::from(x) * i32::from(y)).sum()
}

#[test]
fn honest_worker_passes_and_opens_the_true_product() {
    for (n, n_products) in [(64, 1), (300, 3), (17, 2)] {
        let challenge = challenge(n, n_products, 24);
        let sample_seed = seed(9);
        let (commitment, answer) = round_trip(&challenge, &sample_seed);
        compute::check(&challenge, &commitment, &sample_seed, &answer).unwrap();

        // Every entry of every opened chunk is the true product, not only
        // the asked one.
        let positions = compute::sample_positions(&challenge, &commitment.root, &sample_seed);
        for (position, opening) in positions.iter().zip(&answer.openings) {
            let chunk_start = position.col_idx / CHUNK_ENTRIES * CHUNK_ENTRIES;
            for (offset, &got) in opening.chunk.iter().enumerate() {
                let at = EntryPosition { col_idx: chunk_start + offset as u32, ..*position };
                assert_eq!(got, naive_entry(&challenge, &at), "n {n}, entry {at:?}");
            }
        }
    }
}

#[test]
fn commitment_depends_on_the_seed_only() {
    let first = compute::commit(&challenge(48, 2, 4)).unwrap().commitment();
    let again = compute::commit(&challenge(48, 2, 4)).unwrap().commitment();
    let other = compute::commit(&ComputeChallenge { seed: seed(2), ..challenge(48, 2, 4) }).unwrap().commitment();
    assert_eq!(first, again);
    assert_ne!(first, other);
}

#[test]
fn samples_cover_every_product_row_and_column() {
    let challenge = challenge(16, 3, compute::SAMPLES_MAX);
    let positions = compute::sample_positions(&challenge, &[3; 32], &seed(4));
    assert_eq!(positions.len(), compute::SAMPLES_MAX as usize);
    assert!(positions.iter().all(|p| p.product_idx < 3 && p.row_idx < 16 && p.col_idx < 16));
    for product_idx in 0..3 {
        assert!(positions.iter().any(|p| p.product_idx == product_idx));
    }
    // A different root gives different positions.
    assert_ne!(positions, compute::sample_positions(&challenge, &[4; 32], &seed(4)));
}

#[test]
fn challenges_outside_the_limits_are_refused() {
    let cases = [
        (challenge(compute::N_MIN - 1, 1, 1), ComputeParamsError::N(compute::N_MIN - 1)),
        (challenge(compute::N_MAX + 1, 1, 1), ComputeParamsError::N(compute::N_MAX + 1)),
        (challenge(64, 0, 1), ComputeParamsError::Products(0)),
        (challenge(64, compute::PRODUCTS_MAX + 1, 1), ComputeParamsError::Products(compute::PRODUCTS_MAX + 1)),
        (challenge(64, 1, 0), ComputeParamsError::Samples(0)),
        (challenge(64, 1, compute::SAMPLES_MAX + 1), ComputeParamsError::Samples(compute::SAMPLES_MAX + 1)),
    ];
    for (challenge, want) in cases {
        assert_eq!(compute::commit(&challenge).unwrap_err(), want);
        let answer = ComputeAnswer { openings: Vec::new() };
        let refused = compute::check(&challenge, &ComputeCommitment { root: [0; 32] }, &seed(0), &answer);
        assert_eq!(refused.unwrap_err(), ComputeCheckError::Params(want));
    }
    assert_eq!(
        ComputeParamsError::N(3).to_string(),
        format!("compute.n must be {} to {}, got 3", compute::N_MIN, compute::N_MAX)
    );
}

#[test]
fn malformed_answers_are_errors() {
    let challenge = challenge(300, 2, 8);
    let sample_seed = seed(5);
    let (commitment, answer) = round_trip(&challenge, &sample_seed);
    let check = |answer: &ComputeAnswer| compute::check(&challenge, &commitment, &sample_seed, answer);

    let mut short = answer.clone();
    short.openings.pop();
    assert_eq!(check(&short).unwrap_err(), ComputeCheckError::OpeningCount { got: 7, want: 8 });

    let mut huge_chunk = answer.clone();
    huge_chunk.openings[3].chunk = vec![0; 1 << 20];
    assert!(matches!(check(&huge_chunk), Err(ComputeCheckError::ChunkLength { sample_idx: 3, .. })));

    let mut long_proof = answer.clone();
    long_proof.openings[2].row_proof.push([0; 32]);
    assert!(matches!(
        check(&long_proof),
        Err(ComputeCheckError::Proof { sample_idx: 2, level: "row", source: MerkleError::ProofLength { .. } })
    ));

    let mut changed_entry = answer.clone();
    changed_entry.openings[1].chunk[0] ^= 1;
    assert_eq!(check(&changed_entry).unwrap_err(), ComputeCheckError::RootMismatch { sample_idx: 1 });

    let wrong_root = ComputeCommitment { root: [0; 32] };
    // The positions follow the root, so the answer no longer even fits them;
    // whatever the first failure, it is an error.
    assert!(compute::check(&challenge, &wrong_root, &sample_seed, &answer).is_err());
}

/// A worker that commits to C with some entries wrong, consistently, so
/// its proofs are valid and only the recomputation catches it. Built here
/// from the public Merkle tree in the crate's layout (chunk leaves of i32
/// little-endian, rows, products).
struct Cheater {
    challenge: ComputeChallenge,
    rows: Vec<Vec<i32>>,
    row_tree: MerkleTree,
}

impl Cheater {
    /// One product with each entry wrong with probability `1 − f`; returns
    /// the cheater and the exact fraction of entries it got right.
    fn new(challenge: &ComputeChallenge, f: f64, rng: &mut ChaCha8Rng) -> (Cheater, f64) {
        assert_eq!(challenge.n_products, 1);
        let n = challenge.n;
        let mut right = 0;
        let rows: Vec<Vec<i32>> = (0..n)
            .map(|row_idx| {
                (0..n)
                    .map(|col_idx| {
                        let entry = naive_entry(challenge, &EntryPosition { product_idx: 0, row_idx, col_idx });
                        if rng.random_bool(f) {
                            right += 1;
                            entry
                        } else {
                            entry + 1
                        }
                    })
                    .collect()
            })
            .collect();
        let row_hashes = rows.iter().map(|row| merkle::root(&chunk_leaves(row)).unwrap()).collect();
        let cheater = Cheater { challenge: challenge.clone(), rows, row_tree: MerkleTree::new(row_hashes).unwrap() };
        (cheater, f64::from(right) / f64::from(n * n))
    }

    fn commitment(&self) -> ComputeCommitment {
        // One product: the commitment tree has one leaf, so its root is the
        // product root.
        ComputeCommitment { root: self.row_tree.root() }
    }

    fn answer(&self, sample_seed: &Seed) -> ComputeAnswer {
        let positions = compute::sample_positions(&self.challenge, &self.row_tree.root(), sample_seed);
        let openings = positions
            .iter()
            .map(|position| {
                let row = &self.rows[position.row_idx as usize];
                let chunk_idx = (position.col_idx / CHUNK_ENTRIES) as usize;
                let chunk_tree = MerkleTree::new(chunk_leaves(row)).unwrap();
                Opening {
                    chunk: row.chunks(CHUNK_ENTRIES as usize).nth(chunk_idx).unwrap().to_vec(),
                    chunk_proof: chunk_tree.proof(chunk_idx).unwrap(),
                    row_proof: self.row_tree.proof(position.row_idx as usize).unwrap(),
                    product_proof: Vec::new(),
                }
            })
            .collect();
        ComputeAnswer { openings }
    }
}

fn chunk_leaves(row: &[i32]) -> Vec<Hash> {
    row.chunks(CHUNK_ENTRIES as usize)
        .map(|chunk| merkle::leaf_hash(&chunk.iter().flat_map(|entry| entry.to_le_bytes()).collect::<Vec<_>>()))
        .collect()
}

#[test]
fn the_cheater_model_matches_the_crate_layout() {
    // With f = 1 the test's cheater is an honest worker: same root as the
    // crate's, and it passes. This pins the layout the next test relies on.
    let challenge = challenge(40, 1, 8);
    let (cheater, right) = Cheater::new(&challenge, 1.0, &mut ChaCha8Rng::seed_from_u64(1));
    assert_eq!(right, 1.0);
    assert_eq!(cheater.commitment(), compute::commit(&challenge).unwrap().commitment());
    compute::check(&challenge, &cheater.commitment(), &seed(3), &cheater.answer(&seed(3))).unwrap();
}

#[test]
fn a_partial_cheater_passes_about_f_to_the_s() {
    const N_TRIALS: u32 = 400;
    let challenge = challenge(32, 1, 4);
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let (cheater, right) = Cheater::new(&challenge, 0.8, &mut rng);
    let commitment = cheater.commitment();
    let mut passed = 0;
    for trial in 0..N_TRIALS {
        let mut sample_seed = [0u8; 32];
        sample_seed[..4].copy_from_slice(&trial.to_le_bytes());
        match compute::check(&challenge, &commitment, &sample_seed, &cheater.answer(&sample_seed)) {
            Ok(()) => passed += 1,
            Err(ComputeCheckError::WrongEntry { .. }) => {}
            Err(other) => panic!("a consistent cheater fails only on entries, got {other}"),
        }
    }
    let want = right.powi(4);
    let got = f64::from(passed) / f64::from(N_TRIALS);
    // Four standard errors of a binomial proportion.
    let tolerance = 4.0 * (want * (1.0 - want) / f64::from(N_TRIALS)).sqrt();
    assert!((got - want).abs() < tolerance, "pass rate {got}, f^s = {want}");
}

#[test]
fn challenge_and_answer_survive_the_wire() {
    let challenge = challenge(64, 1, 3);
    let (commitment, answer) = round_trip(&challenge, &seed(8));
    let challenge_back: ComputeChallenge = serde_json::from_str(&serde_json::to_string(&challenge).unwrap()).unwrap();
    let commitment_back: ComputeCommitment =
        serde_json::from_str(&serde_json::to_string(&commitment).unwrap()).unwrap();
    let answer_back: ComputeAnswer = serde_json::from_str(&serde_json::to_string(&answer).unwrap()).unwrap();
    assert_eq!((&challenge_back, &commitment_back, &answer_back), (&challenge, &commitment, &answer));
    compute::check(&challenge_back, &commitment_back, &seed(8), &answer_back).unwrap();
}

#[test]
fn one_opening_stays_under_the_stated_size() {
    let challenge = challenge(600, 5, 16);
    let (_, answer) = round_trip(&challenge, &seed(6));
    for opening in &answer.openings {
        let hashes = opening.chunk_proof.len() + opening.row_proof.len() + opening.product_proof.len();
        assert!(hashes <= compute::OPENING_HASHES_MAX);
        assert!(opening.chunk.len() * 4 + hashes * 32 <= compute::OPENING_BYTES_MAX);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn honest_answers_pass_and_any_corrupted_one_fails(
        n in compute::N_MIN..70,
        n_products in 1u32..4,
        sample_byte in any::<u8>(),
        pick in any::<prop::sample::Index>(),
        corruption in 0usize..5,
    ) {
        let challenge = ComputeChallenge { seed: [sample_byte; 32], n, n_products, n_samples: 6 };
        let sample_seed = [sample_byte.wrapping_add(1); 32];
        let (commitment, answer) = round_trip(&challenge, &sample_seed);
        prop_assert!(compute::check(&challenge, &commitment, &sample_seed, &answer).is_ok());

        let mut bad = answer.clone();
        let opening = &mut bad.openings[pick.index(6)];
        match corruption {
            0 => opening.chunk[0] = opening.chunk[0].wrapping_add(1),
            1 => opening.chunk.push(0),
            2 => opening.row_proof.push([1; 32]),
            3 => match opening.chunk_proof.first_mut().or(opening.row_proof.first_mut()) {
                Some(hash) => hash[0] ^= 1,
                None => opening.chunk.clear(),
            },
            _ => { bad.openings.pop(); }
        }
        prop_assert!(compute::check(&challenge, &commitment, &sample_seed, &bad).is_err());
    }

    #[test]
    fn garbage_answers_are_errors_not_panics(
        chunk in prop::collection::vec(any::<i32>(), 0..300),
        proof_len in 0usize..40,
        n_openings in 0usize..6,
    ) {
        let challenge = challenge(64, 2, 5);
        let opening = Opening {
            chunk,
            chunk_proof: vec![[2; 32]; proof_len],
            row_proof: vec![[3; 32]; proof_len / 2],
            product_proof: vec![[4; 32]; 1],
        };
        let answer = ComputeAnswer { openings: vec![opening; n_openings] };
        let commitment = ComputeCommitment { root: [5; 32] };
        prop_assert!(compute::check(&challenge, &commitment, &seed(1), &answer).is_err());
    }
}
