//! The embedded network: `iog demo` and `iog up`, as a user runs them.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{IOG, Proc, decode_png, examples_dir, free_port};
use iog_client::Client;
use iog_proto::api::JobStatus;
use iog_types::JobState;

#[test]
fn demo_renders_the_scene_and_keeps_its_store_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("state");
    let out_dir = dir.path().join("out");
    let out = Command::new(IOG)
        .args(["demo", "--json", "--data-dir", data_dir.to_str().unwrap(), "--out", out_dir.to_str().unwrap()])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "demo failed: {}", String::from_utf8_lossy(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let job: JobStatus = serde_json::from_value(report["job"].clone()).unwrap();
    assert_eq!(job.state, JobState::Done);
    assert_eq!(job.tasks.committed, job.n_tasks);
    assert_eq!(job.workers.len(), 3, "three workers took part: {:?}", job.workers);
    let (width, height, _) = decode_png(&std::fs::read(out_dir.join("image.png")).unwrap());
    assert_eq!((width, height), (320, 240));
    assert!(data_dir.join("coordinator/coordinator.db").is_file(), "the store was kept");
    for idx in 0..3 {
        assert!(data_dir.join(format!("worker-{idx}/identity.key")).is_file());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_serves_jobs_until_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let data_dir = dir.path().join("up");
    let args = [
        "up",
        "--workers",
        "2",
        "--listen",
        &listen,
        "--data-dir",
        data_dir.to_str().unwrap(),
        "--heartbeat-interval-ms",
        "100",
    ];
    let log = dir.path().join("up.log");
    let file = std::fs::File::create(&log).unwrap();
    let child = Command::new(IOG).args(args).stdout(file.try_clone().unwrap()).stderr(file).spawn().unwrap();
    let mut up = Proc { child, log: log.clone() };
    // `up` serves TLS with a certificate of its own, pinned by its fingerprint.
    let pin_file = data_dir.join("coordinator").join(iog_coordinator::PIN_FILE_NAME);
    let deadline = Instant::now() + Duration::from_secs(30);
    let pin: iog_client::Fingerprint = loop {
        if let Some(pin) = std::fs::read_to_string(&pin_file).ok().and_then(|text| text.parse().ok()) {
            break pin;
        }
        assert!(Instant::now() < deadline, "up wrote no pin: {}", std::fs::read_to_string(&log).unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let client = Client::connect(&format!("https://{listen}"), Some(pin)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if client.workers().await.is_ok_and(|w| w.iter().filter(|w| w.online).count() == 2) {
            break;
        }
        assert!(Instant::now() < deadline, "up did not start: {}", std::fs::read_to_string(&log).unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let job = examples_dir().join("hash-sha256d.toml");
    let out = Command::new(IOG)
        .args(["job", "submit", job.to_str().unwrap(), "--watch", "--json"])
        .env("IOG_COORDINATOR", format!("https://{listen}"))
        .env("IOG_PIN", pin.to_string())
        .env("IOG_WALLET_DIR", dir.path().join("wallet"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: JobStatus = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status.state, JobState::Done);
    assert_eq!(status.artifacts[0].name, "result.json");

    // Ctrl-C stops it cleanly.
    let pid = up.child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(15);
    let exit = loop {
        if let Some(exit) = up.child.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "up did not stop on SIGINT: {}", up.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exit.success(), "up exited with {exit}: {}", up.log_text());
}
