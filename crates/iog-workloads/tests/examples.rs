//! Every example job under `examples/` parses, and specs survive JSON.

use std::path::PathBuf;

use iog_workloads::{
    JobSpec, WorkloadSpec, assemble, chain_length, demo_job, next_input, parse_job_file, parse_job_json, plan,
    run_task, spot_check,
};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn example_jobs() -> Vec<(PathBuf, JobSpec)> {
    let mut jobs = Vec::new();
    let entries = std::fs::read_dir(examples_dir()).expect("examples folder exists");
    for entry in entries {
        let path = entry.expect("readable folder entry").path();
        if path.extension().is_some_and(|ext| ext == "toml") {
            let text = std::fs::read_to_string(&path).expect("readable example");
            let spec = parse_job_file(&text, &examples_dir()).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            jobs.push((path, spec));
        }
    }
    jobs.sort_by(|a, b| a.0.cmp(&b.0));
    jobs
}

#[test]
fn every_example_parses_and_plans() {
    let jobs = example_jobs();
    let kinds: Vec<&str> = jobs.iter().map(|(_, spec)| spec.job.workload.as_str()).collect();
    assert_eq!(kinds, ["hash", "hash", "hash", "noop", "render"]);
    for (path, spec) in &jobs {
        let workload = spec.workload().expect("a workload");
        let inputs = plan(&workload).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        assert!(!inputs.is_empty());
    }
}

#[test]
fn specs_round_trip_through_json() {
    for (path, spec) in example_jobs() {
        let json = serde_json::to_vec(&spec).expect("serializes");
        let back = parse_job_json(&json).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
        assert_eq!(back, spec, "{}", path.display());
    }
}

#[test]
fn demo_job_is_the_example_with_its_scene_inlined() {
    let (_, from_files) =
        example_jobs().into_iter().find(|(path, _)| path.ends_with("render-cornell.toml")).expect("the render example");
    assert_eq!(demo_job(), from_files);
}

#[test]
fn the_nbody_example_runs_as_a_chain_of_windows() {
    let folder = examples_dir().join("nbody");
    let text = std::fs::read_to_string(folder.join("plummer.toml")).expect("the nbody example");
    let spec = parse_job_file(&text, &folder).expect("parses");
    assert_eq!(spec.verify().expect("a policy"), iog_types::Verify::Replicate { replicas: 2, replicas_max: 5 });
    let json = serde_json::to_vec(&spec).expect("serializes");
    assert_eq!(parse_job_json(&json).expect("parses back"), spec);
    let workload = spec.workload().expect("a workload");
    let WorkloadSpec::Nbody(nbody) = &workload else { panic!("an nbody job") };
    assert_eq!((nbody.particles, nbody.windows, nbody.steps_per_window), (256, 8, 200));
    assert_eq!(chain_length(&workload), Some(8));
    let mut inputs = plan(&workload).expect("plans");
    assert_eq!(inputs.len(), 1, "a chain plans its first window");
    let mut outputs: Vec<Vec<u8>> = Vec::new();
    for window in 0..8 {
        if window > 0 {
            inputs.push(
                next_input(&workload, window, &inputs[window as usize - 1], &outputs[window as usize - 1]).unwrap(),
            );
        }
        let run = run_task(&inputs[window as usize]).expect("runs");
        assert_eq!(run.work_units, 256 * 256 * 200);
        outputs.push(run.output);
    }
    let spot = spot_check(&inputs[7], &outputs[7], 3).expect("checks");
    assert!(spot.passed, "{}", spot.detail);
    let artifacts = assemble(&workload, &outputs, &[1; 8]).expect("assembles");
    let result: serde_json::Value = serde_json::from_slice(&artifacts[0].bytes).expect("JSON");
    let drift = result["max_relative_drift"].as_f64().expect("a drift");
    assert!(drift < 1e-5, "{drift}");
}
