//! `sim` jobs end to end: a Monte Carlo estimate split over worker
//! processes on loopback, spot-checked by the coordinator, combined into
//! one answer with its confidence interval.

mod common;

use std::time::Duration;

use common::{Cluster, submit};
use iog_types::JobState;

#[tokio::test(flavor = "multi_thread")]
async fn an_option_price_over_two_workers_is_spot_checked_and_lands_on_black_scholes() {
    let cluster = Cluster::start(2).await;
    let examples = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/sim");
    let file = examples.join("option.toml");
    let job_id = submit(&cluster, &file);
    let status = cluster.wait_job(job_id, Duration::from_secs(120), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    assert!(status.verify.starts_with("spot"), "{}", status.verify);
    assert_eq!(status.workers.len(), 2, "{:?}", status.workers);

    let out = cluster.dir.path().join("option");
    let fetched = cluster.cli(&["job", "result", &job_id.to_string(), "--out", out.to_str().unwrap()]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let (estimate, error) = (result["estimate"].as_f64().unwrap(), result["std_error"].as_f64().unwrap());
    let exact = result["exact"].as_f64().unwrap();
    assert_eq!(result["samples"], 8 * 250_000);
    assert!((estimate - exact).abs() < 4.0 * error, "{result}");
    let ci = result["ci95"].as_array().unwrap();
    assert!(ci[0].as_f64().unwrap() < estimate && estimate < ci[1].as_f64().unwrap(), "{result}");

    // The same job computed here gives the same bits: workers' results are
    // exactly what one machine computes.
    let (_, here) = common::reference(&file);
    assert_eq!(here, std::fs::read(out.join("result.json")).unwrap());
}

/// An N-body job runs its time windows one after another over two worker
/// processes, each window replicated and made by the coordinator from the
/// last one's agreed result; a coordinator killed mid-chain picks the chain
/// up where it was. The energy stays within its bound, and every artifact
/// is exactly what one machine computes.
#[tokio::test(flavor = "multi_thread")]
async fn an_nbody_chain_of_windows_survives_a_coordinator_kill_and_equals_one_machines_run() {
    let mut cluster = Cluster::start(2).await;
    let file = cluster.dir.path().join("nbody.toml");
    let text = "[job]\nname = \"windows\"\nworkload = \"nbody\"\n\n[nbody]\nparticles = 64\nwindows = 6\n\
                steps_per_window = 300\ndt = 0.001\nseed = 3\n\n[verify]\npolicy = \"replicate\"\nreplicas = 2\n";
    std::fs::write(&file, text).unwrap();
    let (digests, _) = common::reference(&file);
    assert_eq!(digests.len(), 6);
    let job_id = submit(&cluster, &file);
    // One window at a time: never a later window's task before the last settled.
    let mid = cluster.wait_job(job_id, Duration::from_secs(120), |s| s.n_settled >= 2 || s.is_settled()).await;
    assert_eq!(mid.state, JobState::Running, "{mid:?}");
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    let made = tasks.iter().map(|t| t.task_id.task_idx % 6).max().unwrap();
    assert!(made <= mid.n_settled, "window {made} exists while {} are settled: {tasks:?}", mid.n_settled);

    cluster.coordinator.as_mut().unwrap().kill9();
    cluster.start_coordinator().await;
    let status = cluster.wait_job(job_id, Duration::from_secs(120), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    for (window, digest) in digests.iter().enumerate() {
        let task = tasks.iter().find(|t| t.task_id.task_idx as usize == window).unwrap();
        assert_eq!(task.accepted_output, Some(*digest), "window {window}: {task:?}");
    }
    let out = cluster.dir.path().join("nbody");
    let fetched = cluster.cli(&["job", "result", &job_id.to_string(), "--out", out.to_str().unwrap()]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let drift = result["max_relative_drift"].as_f64().unwrap();
    assert!(drift < 1e-4, "{result}");
    let (_, here) = common::reference(&file);
    assert_eq!(here, std::fs::read(out.join("result.json")).unwrap(), "the network's answer is one machine's");
}
