//! The hash puzzle: solutions check, bad answers do not, and the honest
//! miss probability is what a simulation of real hashing measures.

use iog_trust::Seed;
use iog_trust::puzzle::{self, HashAnswer, HashChallenge, HashCheckError, HashParamsError, HashSolveError};
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn seed(byte: u8) -> Seed {
    [byte; 32]
}

#[test]
fn solutions_check_and_are_the_smallest() {
    let challenge = HashChallenge { seed: seed(1), difficulty_bits: 8, n_solutions: 8 };
    let answer = puzzle::solve(&challenge, 1 << 24).unwrap();
    puzzle::check(&challenge, &answer).unwrap();
    let last = *answer.nonces.last().unwrap();
    let all: Vec<u64> = (0..=last).filter(|&nonce| puzzle::leading_zero_bits(&challenge.seed, nonce) >= 8).collect();
    assert_eq!(all, answer.nonces);
}

#[test]
fn bad_answers_are_refused() {
    let challenge = HashChallenge { seed: seed(2), difficulty_bits: 6, n_solutions: 4 };
    let answer = puzzle::solve(&challenge, 1 << 24).unwrap();
    let check = |nonces: Vec<u64>| puzzle::check(&challenge, &HashAnswer { nonces });

    let mut repeated = answer.nonces.clone();
    repeated[2] = repeated[1];
    assert_eq!(check(repeated.clone()).unwrap_err(), HashCheckError::NotIncreasing { idx: 2, nonce: repeated[1] });
    assert!(matches!(check(answer.nonces[..3].to_vec()), Err(HashCheckError::NonceCount { got: 3, want: 4 })));
    assert!(matches!(check(vec![0; 100_000]), Err(HashCheckError::NonceCount { .. })));
    // The last nonce swapped for a larger one that is not a solution.
    let easy = (answer.nonces[2] + 1..).find(|&nonce| puzzle::leading_zero_bits(&challenge.seed, nonce) < 6).unwrap();
    let mut with_easy = answer.nonces.clone();
    with_easy[3] = easy;
    assert_eq!(
        check(with_easy).unwrap_err(),
        HashCheckError::TooEasy { nonce: easy, zero_bits: puzzle::leading_zero_bits(&challenge.seed, easy), want: 6 }
    );
}

#[test]
fn invalid_challenges_are_refused_and_hard_ones_given_up() {
    let too_hard = HashChallenge { seed: seed(3), difficulty_bits: 65, n_solutions: 1 };
    assert_eq!(puzzle::solve(&too_hard, 1).unwrap_err(), HashSolveError::Params(HashParamsError::Difficulty(65)));
    let none = HashChallenge { seed: seed(3), difficulty_bits: 1, n_solutions: 0 };
    assert_eq!(
        puzzle::check(&none, &HashAnswer { nonces: Vec::new() }).unwrap_err(),
        HashCheckError::Params(HashParamsError::Solutions(0))
    );
    let hard = HashChallenge { seed: seed(3), difficulty_bits: 40, n_solutions: 1 };
    assert!(matches!(puzzle::solve(&hard, 1 << 19), Err(HashSolveError::GaveUp { found: 0, .. })));
}

#[test]
fn miss_probability_has_the_documented_values() {
    // The module documentation's figures at c = 2.5.
    for (m, want) in [(8, 7.8e-4), (12, 6.4e-5), (16, 5.5e-6)] {
        let got = puzzle::miss_probability(m, puzzle::DEADLINE_MULTIPLE, 1.0);
        assert!((got / want - 1.0).abs() < 0.02, "m {m}: {got}");
    }
    // A slower device passes as often as documented.
    let half = 1.0 - puzzle::miss_probability(16, 2.5, 0.5);
    let quarter = 1.0 - puzzle::miss_probability(16, 2.5, 0.25);
    assert!((half - 0.84).abs() < 0.005 && (quarter - 0.049).abs() < 0.001, "{half} {quarter}");
    // One solution: the exponential tail e^−c.
    assert!((puzzle::miss_probability(1, 2.0, 1.0) - (-2.0f64).exp()).abs() < 1e-12);
    // Huge means do not underflow into nonsense.
    let tiny = puzzle::miss_probability(64, 20.0, 1.0);
    assert!((0.0..1e-100).contains(&tiny));
}

#[test]
fn miss_probability_matches_real_hashing() {
    // Count the hashes to the m-th solution with real blake3 for many seeds
    // and compare the fraction beyond c times the mean with the formula.
    const N_SEEDS: u32 = 3000;
    const M: u32 = 8;
    const D: u32 = 6;
    const MULTIPLE: f64 = 1.5;
    let deadline_hashes = (MULTIPLE * f64::from(M) * 2f64.powi(D as i32)) as u64;
    let mut missed = 0;
    for seed_idx in 0..N_SEEDS {
        let mut seed = [0u8; 32];
        seed[..4].copy_from_slice(&seed_idx.to_le_bytes());
        let found = (0..deadline_hashes).filter(|&nonce| puzzle::leading_zero_bits(&seed, nonce) >= D).count();
        if found < M as usize {
            missed += 1;
        }
    }
    let got = f64::from(missed) / f64::from(N_SEEDS);
    let want = puzzle::miss_probability(M, MULTIPLE, 1.0);
    let tolerance = 4.0 * (want * (1.0 - want) / f64::from(N_SEEDS)).sqrt();
    assert!((got - want).abs() < tolerance, "measured {got}, formula {want}");
}

#[test]
fn miss_probability_matches_a_simulated_erlang_tail() {
    const N_TRIALS: u32 = 200_000;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for (m, multiple) in [(12u32, 2.0), (16, 1.5)] {
        // Sum of m unit exponentials against c · m.
        let missed = (0..N_TRIALS)
            .filter(|_| (0..m).map(|_| -(1.0 - rng.random::<f64>()).ln()).sum::<f64>() > multiple * f64::from(m))
            .count();
        let got = missed as f64 / f64::from(N_TRIALS);
        let want = puzzle::miss_probability(m, multiple, 1.0);
        let tolerance = 4.0 * (want * (1.0 - want) / f64::from(N_TRIALS)).sqrt();
        assert!((got - want).abs() < tolerance, "m {m}, c {multiple}: simulated {got}, formula {want}");
    }
}

proptest! {
    #[test]
    fn plans_hit_the_target_with_8_to_16_solutions(hashes_per_s in 1e3f64..1e13, target_ms in 10u64..600_000) {
        let challenge = puzzle::plan(seed(4), hashes_per_s, target_ms);
        prop_assert!(challenge.validate().is_ok());
        let total = hashes_per_s * target_ms as f64 / 1000.0;
        if total >= 8.0 {
            prop_assert!((8..=16).contains(&challenge.n_solutions));
            let ratio = puzzle::expected_ms(&challenge, hashes_per_s) / target_ms as f64;
            // Rounding m to an integer at m >= 8 moves the mean by at most 1/16.
            prop_assert!((ratio - 1.0).abs() <= 1.0 / 16.0 + 1e-9, "ratio {}", ratio);
        }
    }

    #[test]
    fn miss_probability_falls_with_the_multiple_and_the_rate(m in 1u32..64, c in 0.5f64..5.0, r in 0.1f64..1.0) {
        let base = puzzle::miss_probability(m, c, r);
        prop_assert!((0.0..=1.0).contains(&base));
        // Within rounding: near 0 or 1 the two values may tie to the last bit.
        prop_assert!(puzzle::miss_probability(m, c * 1.1, r) <= base + 1e-12);
        prop_assert!(puzzle::miss_probability(m, c, r * 0.9) >= base - 1e-12);
    }
}
