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
