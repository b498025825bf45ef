//! The nonce search finds exactly the qualifying nonces.

use iog_workloads::hash::{HashAlgorithm, HashResult, HashSpec};
use iog_workloads::{WorkloadSpec, assemble, plan, run_task};
use sha2::{Digest, Sha256};

/// Hashes computed here independently of the crate's search code.
fn reference_hash(algorithm: HashAlgorithm, data: &[u8], nonce: u64) -> [u8; 32] {
    let mut message = data.to_vec();
    message.extend_from_slice(&nonce.to_le_bytes());
    match algorithm {
        HashAlgorithm::Blake3 => *blake3::hash(&message).as_bytes(),
        HashAlgorithm::Sha256d => Sha256::digest(Sha256::digest(&message)).into(),
    }
}

fn leading_zeros(hash: &[u8; 32]) -> u32 {
    u64::from_be_bytes(hash[..8].try_into().expect("8 bytes")).leading_zeros()
}

fn run_job(spec: &HashSpec) -> HashResult {
    let workload = WorkloadSpec::Hash(spec.clone());
    let inputs = plan(&workload).expect("plans");
    let outputs: Vec<Vec<u8>> = inputs
        .iter()
        .map(|input| {
            let run = run_task(input).expect("runs");
            assert_eq!(run, run_task(input).expect("runs again"), "deterministic");
            run.output
        })
        .collect();
    let durations_ms = vec![500; outputs.len()];
    let artifacts = assemble(&workload, &outputs, &durations_ms).expect("assembles");
    assert_eq!(artifacts[0].name, "result.json");
    assert_eq!(artifacts[0].media_type, "application/json");
    serde_json::from_slice(&artifacts[0].bytes).expect("a hash result")
}

fn check_against_brute_force(algorithm: HashAlgorithm) {
    let spec = HashSpec {
        algorithm,
        data: "iog test header".to_owned(),
        nonce_start: 1_000_000,
        nonce_count: 60_000,
        nonces_per_task: 7_000,
        difficulty_bits: 10,
    };
    let result = run_job(&spec);
    let expected: Vec<u64> = (spec.nonce_start..spec.nonce_start + spec.nonce_count)
        .filter(|&nonce| leading_zeros(&reference_hash(algorithm, spec.data.as_bytes(), nonce)) >= spec.difficulty_bits)
        .collect();
    let found: Vec<u64> = result.found.iter().map(|entry| entry.nonce).collect();
    assert_eq!(found, expected);
    assert!(found.len() > 20, "about 58 expected, got {}", found.len());
    assert_eq!(result.found_count, found.len() as u64);
    assert_eq!(result.total_hashes, spec.nonce_count);
    // 9 tasks of 500 ms each.
    assert_eq!(result.total_task_seconds, 4.5);
    assert_eq!(result.hashes_per_second, Some(60_000.0 / 4.5));
    for entry in &result.found {
        let hash = reference_hash(algorithm, spec.data.as_bytes(), entry.nonce);
        assert_eq!(entry.hash, hex::encode(hash));
        assert!(leading_zeros(&hash) >= spec.difficulty_bits);
    }
}

#[test]
fn blake3_matches_brute_force() {
    check_against_brute_force(HashAlgorithm::Blake3);
}

#[test]
fn sha256d_matches_brute_force() {
    check_against_brute_force(HashAlgorithm::Sha256d);
}

#[test]
fn found_nonces_meet_a_high_difficulty() {
    let spec = HashSpec {
        algorithm: HashAlgorithm::Blake3,
        data: "iog block header".to_owned(),
        nonce_start: 0,
        nonce_count: 300_000,
        nonces_per_task: 100_000,
        difficulty_bits: 14,
    };
    let result = run_job(&spec);
    assert!(!result.found.is_empty());
    for entry in &result.found {
        let hash = reference_hash(spec.algorithm, spec.data.as_bytes(), entry.nonce);
        assert!(leading_zeros(&hash) >= 14, "nonce {}", entry.nonce);
    }
    let mut sorted = result.found.clone();
    sorted.sort_by_key(|entry| entry.nonce);
    assert_eq!(result.found, sorted);
}

#[test]
fn assemble_rejects_outputs_that_contradict_their_task() {
    let spec = HashSpec {
        algorithm: HashAlgorithm::Sha256d,
        data: String::new(),
        nonce_start: 0,
        nonce_count: 2_000,
        nonces_per_task: 1_000,
        difficulty_bits: 20,
    };
    let workload = WorkloadSpec::Hash(spec);
    let inputs = plan(&workload).expect("plans");
    let mut outputs: Vec<Vec<u8>> = inputs.iter().map(|input| run_task(input).expect("runs").output).collect();
    outputs[1] = br#"{"hashes":5,"found_count":0,"found":[]}"#.to_vec();
    let err = assemble(&workload, &outputs, &[1, 1]).expect_err("wrong hash count");
    assert_eq!(err.to_string(), "task 1 output is invalid: reports 5 hashes, the task had 1000 nonces");
    outputs[1] = br#"{"hashes":1000,"found_count":1,"found":[{"nonce":1500,"hash":"00"}]}"#.to_vec();
    let err = assemble(&workload, &outputs, &[1, 1]).expect_err("invented find");
    assert_eq!(err.to_string(), "task 1 output is invalid: gives a wrong hash for nonce 1500");
    let err = assemble(&workload, &outputs, &[1]).expect_err("one duration short");
    assert_eq!(err.to_string(), "expected 2 task durations (one per task), got 1");
}

#[test]
fn noop_tasks_are_empty() {
    let workload = WorkloadSpec::Noop(iog_workloads::noop::NoopSpec { n_tasks: 3, task_ms: 0 });
    let inputs = plan(&workload).expect("plans");
    assert_eq!(inputs.len(), 3);
    assert_ne!(inputs[0], inputs[1]);
    let outputs: Vec<Vec<u8>> = inputs
        .iter()
        .map(|input| {
            let run = run_task(input).expect("runs");
            assert_eq!(run.work_units, 0);
            run.output
        })
        .collect();
    let artifacts = assemble(&workload, &outputs, &[0, 0, 0]).expect("assembles");
    let result: serde_json::Value = serde_json::from_slice(&artifacts[0].bytes).expect("JSON");
    assert_eq!(result["n_tasks"], 3);
}
