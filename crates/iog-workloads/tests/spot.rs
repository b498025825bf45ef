//! Spot checks: honest outputs always pass; wrong ones fail at the rates
//! their sampling predicts, and the checks cost a small share of the task.

use iog_workloads::{parse_job_file_with, plan, run_task, spot_check};

fn inputs_of(job: &str) -> Vec<Vec<u8>> {
    let scene = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/scenes/cornell.toml"))
        .expect("the example scene");
    let spec = parse_job_file_with(job, &mut |_: &str| Ok(scene.clone())).unwrap();
    plan(&spec.workload().unwrap()).unwrap()
}

const RENDER: &str = "[job]\nname = \"r\"\nworkload = \"render\"\n[render]\nscene = \"cornell.toml\"\nwidth = 32\n\
                      height = 32\ntile_size = 16\nsamples_per_pixel = 4\nseed = 1\n";
const HASH: &str = "[job]\nname = \"h\"\nworkload = \"hash\"\n[hash]\nalgorithm = \"blake3\"\ndata = \"spot\"\n\
                    nonce_start = 0\nnonce_count = 64000\nnonces_per_task = 32000\ndifficulty_bits = 9\n";

#[test]
fn honest_outputs_pass_every_draw() {
    for job in [RENDER, HASH] {
        for input in inputs_of(job) {
            let output = run_task(&input).unwrap().output;
            for seed in 0..50 {
                let spot = spot_check(&input, &output, seed).unwrap();
                assert!(spot.passed, "{}", spot.detail);
            }
        }
    }
}

#[test]
fn a_render_tile_that_is_wrong_fails() {
    let inputs = inputs_of(RENDER);
    let right = run_task(&inputs[0]).unwrap().output;
    // Random bytes, and the right tile of another seed.
    let random: Vec<u8> = right.iter().enumerate().map(|(i, b)| b.wrapping_add(1 + (i % 7) as u8)).collect();
    let other_seed = run_task(&inputs_of(&RENDER.replace("seed = 1", "seed = 2"))[0]).unwrap().output;
    // Another tile of the same image (a replay).
    let replay = run_task(&inputs[3]).unwrap().output;
    for wrong in [&random, &other_seed, &replay] {
        let caught = (0..100).filter(|seed| !spot_check(&inputs[0], wrong, *seed).unwrap().passed).count();
        assert!(caught >= 95, "caught {caught} of 100");
    }
    let short = spot_check(&inputs[0], &right[..right.len() - 3], 0).unwrap();
    assert!(!short.passed && short.detail.contains("bytes"), "{}", short.detail);
    // One wrong pixel in 256 hides from 8 samples most of the time: the
    // rate is what sampling predicts, 1 − (255/256)^8 ≈ 3 %.
    let mut one_off = right.clone();
    one_off[0] = one_off[0].wrapping_add(1);
    let caught = (0..2_000).filter(|seed| !spot_check(&inputs[0], &one_off, *seed).unwrap().passed).count();
    assert!((20..=110).contains(&caught), "caught {caught} of 2000");
}

#[test]
fn a_hash_output_that_is_wrong_fails() {
    let inputs = inputs_of(HASH);
    let right = run_task(&inputs[0]).unwrap().output;
    let garbage = spot_check(&inputs[0], b"not json", 0).unwrap();
    assert!(!garbage.passed && garbage.detail.contains("not a hash task output"), "{}", garbage.detail);
    // Another range's answer (a replay, or another seed).
    let replay = run_task(&inputs[1]).unwrap().output;
    let spot = spot_check(&inputs[0], &replay, 0).unwrap();
    assert!(!spot.passed && spot.detail.contains("outside its range"), "{}", spot.detail);
    // A worker that skipped the search and reported nothing found: caught
    // whenever the re-searched sixteenth holds a find.
    let mut lazy: serde_json::Value = serde_json::from_slice(&right).unwrap();
    let n_found = lazy["found"].as_array().unwrap().len();
    assert!(n_found >= 20, "{n_found}");
    lazy["found"] = serde_json::json!([]);
    lazy["found_count"] = serde_json::json!(0);
    let lazy = serde_json::to_vec(&lazy).unwrap();
    let caught = (0..200).filter(|seed| !spot_check(&inputs[0], &lazy, *seed).unwrap().passed).count();
    assert!(caught >= 150, "caught {caught} of 200");
    // Saying one nonce was found but listing none (as if the list were
    // cut short) is refused: a task lists every find up to its limit.
    let mut hollow: serde_json::Value = serde_json::from_slice(&right).unwrap();
    hollow["found"] = serde_json::json!([]);
    hollow["found_count"] = serde_json::json!(1);
    let hollow = serde_json::to_vec(&hollow).unwrap();
    let spot = spot_check(&inputs[0], &hollow, 0).unwrap();
    assert!(!spot.passed && spot.detail.contains("lists every find"), "{}", spot.detail);
    // The check searches a sixteenth of the task.
    let spot = spot_check(&inputs[0], &right, 3).unwrap();
    assert_eq!(spot.work_units, 2_000);
}

#[test]
fn an_empty_task_must_return_nothing() {
    let job = "[job]\nname = \"n\"\nworkload = \"noop\"\n[noop]\nn_tasks = 1\n";
    let input = &inputs_of(job)[0];
    assert!(spot_check(input, b"", 0).unwrap().passed);
    assert!(!spot_check(input, b"x", 0).unwrap().passed);
}
