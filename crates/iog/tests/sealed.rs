//! Sealed jobs on a real network: a coordinator and worker processes on
//! loopback over TLS. The submitter's CLI seals the job, hands task keys to
//! the workers that run it and opens the results; the coordinator's store
//! holds only ciphertext.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Cluster, decode_png, reference_render, write_render_job};
use iog_types::{JobId, JobState};

/// A string in every render task's input (the scene's camera) and in a
/// plain render job's spec, but in nothing the coordinator holds of a
/// sealed one.
const PLAINTEXT_MARKER: &[u8] = b"look_from";

/// The render job of [`write_render_job`], sealed, every tile run twice.
fn sealed_render_job(dir: &Path) -> (PathBuf, PathBuf) {
    let plain = write_render_job(dir, 32, 32, 16, 4);
    let text = std::fs::read_to_string(&plain)
        .unwrap()
        .replace("workload = \"render\"\n", "workload = \"render\"\nsealed = true\n")
        + "\n[verify]\npolicy = \"replicate\"\nreplicas = 2\n";
    let sealed = dir.join("sealed-render.toml");
    std::fs::write(&sealed, text).unwrap();
    (sealed, plain)
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|window| window == needle)
            {
                found.push(path);
            }
        }
    }
    found
}

fn job_id_of(stdout: &[u8]) -> JobId {
    let text = String::from_utf8_lossy(stdout);
    text.lines().next().expect("the job id comes first").trim().parse().expect("a job id")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_job_runs_on_workers_while_the_coordinator_holds_only_ciphertext() {
    let cluster = Cluster::start(2).await;
    let (sealed_file, plain_file) = sealed_render_job(cluster.dir.path());

    // Submitted and followed by the CLI, which hands out the task keys.
    let out = cluster.cli(&["job", "submit", sealed_file.to_str().unwrap(), "--watch"]);
    assert!(
        out.status.success(),
        "sealed submit --watch failed:\n{}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        cluster.logs()
    );
    let job_id = job_id_of(&out.stdout);
    let status = cluster.client.job(job_id).await.unwrap();
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert!(status.sealed);
    assert!(status.artifacts.is_empty(), "the coordinator cannot assemble what it cannot read");
    assert_eq!(status.n_tasks, 4);

    // Both workers ran every tile; their sealed outputs agreed byte for
    // byte, which is how replication still verifies a sealed job.
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    assert_eq!(tasks.len(), 8, "{tasks:?}");
    for task in &tasks[..4] {
        let accepted = task.accepted_output.expect("every tile has an accepted result");
        let bytes = cluster.client.get_blob(accepted).await.unwrap();
        assert!(iog_seal::is_sealed(&bytes), "task {} output is not sealed", task.task_id);
        let replica = &tasks[task.task_id.task_idx as usize + 4];
        assert_eq!(replica.output, Some(accepted), "the replica's sealed bytes match");
        assert_ne!(replica.committed_by, task.committed_by, "replicas ran on different workers");
    }

    // The submitter opens and assembles the image: it is the image a single
    // machine renders.
    let out_dir = cluster.dir.path().join("sealed-out");
    let out = cluster.cli(&["job", "result", &job_id.to_string(), "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "result failed: {}", String::from_utf8_lossy(&out.stderr));
    let (width, height, rgb) = decode_png(&std::fs::read(out_dir.join("image.png")).unwrap());
    assert_eq!((width, height, rgb), reference_render(&plain_file));

    // Nothing in the coordinator's data directory (SQLite file, journal,
    // blob directory) holds the scene.
    let coordinator_dir = cluster.coordinator_dir();
    assert_eq!(files_containing(&coordinator_dir, PLAINTEXT_MARKER), Vec::<PathBuf>::new());

    // The same job unsealed does put it there, so the search above can
    // find what it looks for.
    let plain_id = common::submit(&cluster, &plain_file);
    cluster.wait_job(plain_id, Duration::from_secs(120), |status| status.is_settled()).await;
    assert!(!files_containing(&coordinator_dir, PLAINTEXT_MARKER).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_keys_go_only_from_the_owner_to_the_lease_holder() {
    let cluster = Cluster::start(1).await;
    let (sealed_file, _) = sealed_render_job(cluster.dir.path());
    let text = std::fs::read_to_string(&sealed_file)
        .unwrap()
        .replace("policy = \"replicate\"\nreplicas = 2\n", "policy = \"none\"\n");
    let spec = iog_workloads::parse_job_file(&text, cluster.dir.path()).unwrap();
    let alice = &cluster.client;
    let wallet_dir = cluster.wallet_dir();
    let (submitted, record) = iog_client::sealed::submit(alice, &spec, &wallet_dir).await.unwrap();
    let job_id = submitted.job_id;
    assert_eq!(submitted.n_tasks, 4);
    assert!(iog_client::sealed::SealedRecord::path_for(&wallet_dir, job_id).is_file(), "the secret is kept");

    // The worker takes a task and asks for its key; nobody has answered yet.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let request = loop {
        if let Some(request) = alice.key_requests(job_id).await.unwrap().into_iter().next() {
            break request;
        }
        assert!(std::time::Instant::now() < deadline, "no key request:\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(request.worker_id, cluster.workers[0].0);
    let status = alice.job(job_id).await.unwrap();
    assert_eq!(status.tasks.committed, 0, "no task runs without its key");

    // Another wallet cannot see the requests nor hand out keys: the job is
    // not found for it.
    let bob = cluster.client_for(&cluster.dir.path().join("bob"));
    let not_found = |err: iog_client::ClientError| assert_eq!(err.code(), Some("job_not_found"), "{err}");
    not_found(bob.key_requests(job_id).await.unwrap_err());
    let grant = iog_client::sealed::grant_for(&record, job_id, &request).unwrap();
    not_found(bob.grant_task_keys(job_id, std::slice::from_ref(&grant)).await.unwrap_err());

    // A grant under another lease is dropped as stale.
    let mut stale = grant.clone();
    stale.token += 1;
    let outcome = alice.grant_task_keys(job_id, &[stale]).await.unwrap();
    assert_eq!((outcome.delivered, outcome.stale), (0, 1));

    // A key wrapped for another worker's context reaches the worker, which
    // cannot open it and keeps waiting.
    let mut misdirected = request.clone();
    misdirected.worker_id = iog_types::WorkerId(iog_host::Identity::generate().worker_id().0);
    let foreign = iog_seal::wrap(
        &iog_seal::SealPublic::from_hex(&request.seal_key).unwrap(),
        &iog_seal::task_context(job_id.0, request.task_id.task_idx, &misdirected.worker_id.0),
        &record.task_key(request.task_id.task_idx),
    )
    .unwrap();
    let wrong = iog_proto::api::TaskKeyGrant { wrapped: foreign.to_hex(), ..grant.clone() };
    assert_eq!(alice.grant_task_keys(job_id, &[wrong]).await.unwrap().delivered, 1);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !cluster.workers[0].1.log_text().contains("does not open for this worker") {
        assert!(std::time::Instant::now() < deadline, "the worker took a foreign key:\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(alice.job(job_id).await.unwrap().tasks.committed, 0);

    // The owner's client answers every request as it comes, and the job ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        iog_client::sealed::serve_keys(alice, &record).await.unwrap();
        let status = alice.job(job_id).await.unwrap();
        if status.state.is_final() {
            assert_eq!(status.state, JobState::Done, "{status:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the job did not end:\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Once it has ended nothing waits.
    assert!(alice.key_requests(job_id).await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_submitter_who_hands_out_no_keys_fails_its_job_not_the_workers() {
    let cluster = Cluster::start_with(1, &["--key-wait-s", "1"]).await;
    let (sealed_file, _) = sealed_render_job(cluster.dir.path());
    let text = std::fs::read_to_string(&sealed_file)
        .unwrap()
        .replace("max_attempts = 10", "max_attempts = 2")
        .replace("policy = \"replicate\"\nreplicas = 2\n", "policy = \"none\"\n");
    let spec = iog_workloads::parse_job_file(&text, cluster.dir.path()).unwrap();
    // Submitted, and then nobody serves its keys.
    let (submitted, _record) = iog_client::sealed::submit(&cluster.client, &spec, &cluster.wallet_dir()).await.unwrap();
    let status = cluster.wait_job(submitted.job_id, Duration::from_secs(60), |s| s.state.is_final()).await;
    assert_eq!(status.state, JobState::Failed, "{status:?}");
    let reason = status.reason.unwrap_or_default();
    assert!(reason.contains("no task key") && reason.contains("iog job watch"), "{reason}");
    assert_eq!(status.tasks.committed, 0);

    // The worker waited for keys, was told to drop each task, and nothing
    // of it counts against the worker.
    let worker = cluster.client.workers().await.unwrap().into_iter().next().expect("the worker");
    assert_eq!(worker.worker_id, cluster.workers[0].0);
    assert_eq!((worker.tasks_failed, worker.leases_lapsed), (0, 0), "{worker:?}");
    assert!(worker.available, "{worker:?}");
    let log = cluster.workers[0].1.log_text();
    // (One task twice to fail the job; others may have been taken back too.)
    assert!(log.matches("task revoked").count() >= 2, "{log}");
    assert!(log.contains("no task key"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_refuses_sealed_specs_that_leak_or_borrow() {
    let cluster = Cluster::start(0).await;
    let (sealed_file, _) = sealed_render_job(cluster.dir.path());
    let spec =
        iog_workloads::parse_job_file(&std::fs::read_to_string(&sealed_file).unwrap(), cluster.dir.path()).unwrap();
    let prepared = iog_client::sealed::prepare(&spec).unwrap();
    let code_of = |err: iog_client::ClientError| err.code().map(str::to_owned);

    // The plain spec marked sealed would hand the coordinator its scene:
    // the client does not send it.
    let leaky = serde_json::to_value(&spec).unwrap();
    let err = cluster.client.submit(leaky).await.unwrap_err();
    assert!(matches!(err, iog_client::ClientError::SealedInTheClear), "{err}");
    // So would a wire spec with the workload section put back.
    let mut leaky = serde_json::to_value(&prepared.wire).unwrap();
    leaky["render"] = serde_json::to_value(spec.render.as_ref().unwrap()).unwrap();
    assert_eq!(code_of(cluster.client.submit(leaky).await.unwrap_err()).as_deref(), Some("invalid_spec"));

    // Inputs another wallet uploaded cannot be borrowed: naming them would
    // make them readable through the job.
    let bob = cluster.client_for(&cluster.dir.path().join("bob"));
    iog_client::sealed::upload(&bob, &prepared).await.unwrap();
    let wire = serde_json::to_value(&prepared.wire).unwrap();
    assert_eq!(
        code_of(cluster.client.submit(wire.clone()).await.unwrap_err()).as_deref(),
        Some("sealed_input_missing")
    );
    assert!(bob.submit(wire).await.is_ok(), "the wallet that uploaded them may submit");

    // Spot checks cannot read a sealed job.
    let spot = std::fs::read_to_string(&sealed_file)
        .unwrap()
        .replace("policy = \"replicate\"\nreplicas = 2\n", "policy = \"spot\"\n");
    let err = iog_workloads::parse_job_file(&spot, cluster.dir.path()).unwrap_err();
    assert!(err.to_string().contains("cannot recompute a sample of a sealed job"), "{err}");
}
