//! Every example job under `examples/` parses, and specs survive JSON.

use std::path::PathBuf;

use iog_workloads::{JobSpec, demo_job, parse_job_file, parse_job_json, plan};

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
