//! The job and worker commands against a real coordinator process.

mod common;

use common::{Cluster, examples_dir};
use iog_proto::api::{JobStatus, SubmittedJob, TaskStatus, WorkerStatus};
use iog_types::{JobState, TaskState};
use serde_json::json;

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_of<T: serde::de::DeserializeOwned>(out: &std::process::Output) -> T {
    assert!(out.status.success(), "command failed: {}", stderr(out));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|err| panic!("bad json ({err}): {}", String::from_utf8_lossy(&out.stdout)))
}

const RENDER_HEAD: &str =
    "[job]\nname = \"bad\"\nworkload = \"render\"\n[render]\nheight = 10\nsamples_per_pixel = 1\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_job_files_are_refused_with_the_field_and_create_nothing() {
    let cluster = Cluster::start(0).await;
    let scene = examples_dir().join("scenes/cornell.toml");
    let scene_line = format!("scene = {:?}\n", scene.to_str().unwrap());
    let cases = [
        ("missing", format!("{RENDER_HEAD}{scene_line}tile_size = 8\n"), "missing field `width` in [render]"),
        (
            "wrong-type",
            format!("{RENDER_HEAD}{scene_line}tile_size = 8\nwidth = \"wide\"\n"),
            "invalid type for render.width: expected an integer, found a string",
        ),
        (
            "out-of-range",
            format!("{RENDER_HEAD}{scene_line}tile_size = 0\nwidth = 10\n"),
            "render.tile_size must be between 8 and 1024, got 0",
        ),
        (
            "unknown-workload",
            format!("{}{scene_line}tile_size = 8\nwidth = 10\n", RENDER_HEAD.replace("\"render\"\n[", "\"fold\"\n[")),
            "job.workload must be one of render, hash, noop, sim, nbody, wasm, process, blender, train, infer; got \"fold\"",
        ),
        (
            "unknown-field",
            format!("{RENDER_HEAD}{scene_line}tile_size = 8\nwidth = 10\ncolour = 1\n"),
            "unknown field `colour` in [render]",
        ),
        ("not-toml", "[job\nname =".to_owned(), "invalid TOML at line 1, column 5: unclosed table"),
    ];
    for (name, text, expected) in cases {
        let path = cluster.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, text).unwrap();
        let out = cluster.cli(&["job", "submit", path.to_str().unwrap()]);
        assert!(!out.status.success(), "{name} was accepted");
        let err = stderr(&out);
        assert!(err.contains(expected), "{name}: expected {expected:?} in {err:?}");
        assert!(err.contains(&format!("{name}.toml")), "{name}: the error names the file: {err:?}");
    }
    // The API checks specs too, whoever sends them.
    let err = cluster
        .client
        .submit(json!({"job": {"name": "x", "workload": "noop"}, "noop": {"n_tasks": 0}}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("invalid_spec"), "{err}");
    assert!(err.to_string().contains("noop.n_tasks"), "{err}");
    let jobs: Vec<JobStatus> = json_of(&cluster.cli(&["job", "list", "--json"]));
    assert!(jobs.is_empty(), "nothing was created: {jobs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_submitted_watched_fetched_and_cancelled_from_the_cli() {
    let mut cluster = Cluster::start(0).await;
    let hash_job = examples_dir().join("hash-blake3.toml");

    // No worker yet: the job waits, and can be cancelled.
    let submitted: SubmittedJob = json_of(&cluster.cli(&["job", "submit", hash_job.to_str().unwrap(), "--json"]));
    let id = submitted.job_id.to_string();
    let status: JobStatus = json_of(&cluster.cli(&["job", "status", &id, "--json"]));
    assert_eq!(status.state, JobState::Running);
    assert_eq!(status.tasks.queued, submitted.n_tasks);
    let cancelled: JobStatus = json_of(&cluster.cli(&["job", "cancel", &id, "--json"]));
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert_eq!(cancelled.tasks.cancelled, submitted.n_tasks);
    let again = cluster.cli(&["job", "cancel", &id]);
    assert!(!again.status.success());
    assert!(stderr(&again).contains("is already cancelled"), "{}", stderr(&again));
    let result = cluster.cli(&["job", "result", &id, "--out", cluster.dir.path().join("x").to_str().unwrap()]);
    assert!(stderr(&result).contains("is cancelled and has no results"), "{}", stderr(&result));

    // With a worker, submit --watch runs the job to the end.
    cluster.start_worker(0);
    cluster.wait_for_online(1).await;
    let done: JobStatus = json_of(&cluster.cli(&["job", "submit", hash_job.to_str().unwrap(), "--watch", "--json"]));
    assert_eq!(done.state, JobState::Done, "{done:?}");
    assert_eq!(done.workers.len(), 1);
    let out_dir = cluster.dir.path().join("hash-out");
    let fetched: serde_json::Value = json_of(&cluster.cli(&[
        "job",
        "result",
        &done.job_id.to_string(),
        "--out",
        out_dir.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(fetched["files"].as_array().unwrap().len(), 1);
    let result: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out_dir.join("result.json")).unwrap()).unwrap();
    assert!(!result["found"].as_array().unwrap().is_empty(), "the example finds nonces: {result}");

    let workers: Vec<WorkerStatus> = json_of(&cluster.cli(&["worker", "list", "--json"]));
    assert_eq!(workers.len(), 1);
    assert!(workers[0].online);
    assert_eq!(workers[0].worker_id, cluster.workers[0].0);
    assert!(workers[0].devices.iter().any(|d| d.name == "cpu0"));

    let text = cluster.cli(&["job", "status", &done.job_id.to_string()]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("state: done") && text.contains("result.json"), "{text}");

    // Each committed task names the device its worker ran it on, through
    // the API and in the CLI's table.
    let tasks: Vec<TaskStatus> = json_of(&cluster.cli(&["job", "tasks", &done.job_id.to_string(), "--json"]));
    assert_eq!(tasks.len() as u32, done.n_tasks, "{tasks:?}");
    for task in &tasks {
        assert_eq!(task.state, TaskState::Committed, "{task:?}");
        assert_eq!(task.device.as_deref(), Some("cpu0"), "{task:?}");
    }
    let table = cluster.cli(&["job", "tasks", &done.job_id.to_string()]);
    assert!(table.status.success(), "{}", stderr(&table));
    let table = String::from_utf8_lossy(&table.stdout).into_owned();
    assert!(table.contains("device") && table.contains("cpu0"), "{table}");
}

#[test]
fn devices_lists_the_cpu_and_explains_missing_gpus() {
    let out = std::process::Command::new(common::IOG).args(["worker", "devices", "--json"]).output().unwrap();
    let report: serde_json::Value = json_of(&out);
    let devices = report["devices"].as_array().unwrap();
    assert!(devices.iter().any(|d| d["name"] == "cpu0" && d["compute_units"].as_u64().unwrap() >= 1));
    let notes = report["notes"].as_array().unwrap();
    let has_gpu = devices.iter().any(|d| d["kind"] == "gpu");
    assert!(has_gpu || notes.iter().any(|n| n.as_str().unwrap().starts_with("nvml:")), "{report}");
}

#[test]
fn client_commands_say_where_they_looked_for_the_coordinator() {
    let port = common::free_port();
    let out = std::process::Command::new(common::IOG)
        .args(["job", "status", "j-0123456789abcdef"])
        .env("IOG_COORDINATOR", format!("http://127.0.0.1:{port}"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains(&format!("cannot reach the coordinator at http://127.0.0.1:{port}")), "{err}");
    assert!(err.contains("IOG_COORDINATOR"), "{err}");
}
