//! Result verification on a live network: honest worker processes and
//! cheating workers (in this process, with the test-only `cheats` feature)
//! run replicas of a job's tasks; every wrong result is outvoted, never
//! paid, slashes its worker's stake and resets its reputation, and the job's
//! artifacts are exactly what an honest run gives.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Cluster, reference, stake};
use iog_ledger::Amount;
use iog_types::{BlobId, JobState, WorkerId};
use iog_worker::Cheat;

fn run_ok(cluster: &Cluster, args: &[&str]) -> String {
    let out = cluster.cli(args);
    assert!(out.status.success(), "iog {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// A hash job of `n_tasks` small tasks with these `[verify]` lines (and
/// `extra` sections).
fn write_hash_job(dir: &Path, name: &str, n_tasks: u64, verify: &str, extra: &str) -> std::path::PathBuf {
    let file = dir.join(format!("{name}.toml"));
    let text = format!(
        "[job]\nname = \"{name}\"\nworkload = \"hash\"\n\n[hash]\nalgorithm = \"blake3\"\ndata = \"{name}\"\n\
         nonce_start = 0\nnonce_count = {}\nnonces_per_task = 20000\ndifficulty_bits = 10\n\n[verify]\n{verify}\n{extra}",
        n_tasks * 20_000
    );
    std::fs::write(&file, text).unwrap();
    file
}

/// Checks that the job's `result.json` found what an honest run finds
/// (its timing fields aside, which differ from run to run).
async fn assert_same_result(cluster: &Cluster, status: &iog_proto::api::JobStatus, honest: &[u8]) {
    let artifact = status.artifacts.iter().find(|a| a.name == "result.json").unwrap();
    let bytes = cluster.client.get_blob(artifact.blob).await.unwrap();
    let found = |bytes: &[u8]| {
        let mut value: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        let object = value.as_object_mut().unwrap();
        object.remove("total_task_seconds");
        object.remove("hashes_per_second");
        value
    };
    assert!(found(&bytes) == found(honest), "the job's result differs from an honest run's");
}

/// Starts a worker in this process that cheats the given way, asking
/// `price` per device-hour, with one slot.
async fn start_cheater(cluster: &Cluster, name: &str, cheat: Cheat, price: &str) -> iog_worker::WorkerHandle {
    common::start_in_process(cluster, name, cheat, |config| {
        config.terms.price_io_per_device_hour = price.parse().unwrap();
    })
    .await
}

/// Checks that each task's accepted output is the honest one, and returns
/// the verdicts on each worker's results: (valid, wrong).
async fn verdicts(cluster: &Cluster, job_id: iog_types::JobId, honest: &[BlobId]) -> Vec<(WorkerId, u32, u32)> {
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    for (task_idx, digest) in honest.iter().enumerate() {
        assert_eq!(tasks[task_idx].accepted_output, Some(*digest), "task {task_idx}: {:?}", tasks[task_idx]);
    }
    let mut by_worker: Vec<(WorkerId, u32, u32)> = Vec::new();
    for task in &tasks {
        let Some(worker) = &task.committed_by else { continue };
        let slot = match by_worker.iter().position(|(w, _, _)| w == worker) {
            Some(idx) => idx,
            None => {
                by_worker.push((worker.clone(), 0, 0));
                by_worker.len() - 1
            }
        };
        match task.verdict.as_deref() {
            Some("valid") => by_worker[slot].1 += 1,
            Some("wrong") => by_worker[slot].2 += 1,
            other => panic!("task {} of a done job has verdict {other:?}", task.task_id),
        }
    }
    by_worker
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_other_seed_and_replayed_results_are_outvoted_unpaid_and_slashed() {
    let flags = ["--faucet-max-io", "100"];
    let mut cluster = Cluster::start_full(2, &flags, &["--price", "36"]).await;
    let honest: Vec<WorkerId> = cluster.workers.iter().map(|(id, _)| id.clone()).collect();
    let cheats = [("random", Cheat::RandomResult), ("other-seed", Cheat::OtherSeed), ("replay", Cheat::Replay)];
    let mut handles = Vec::new();
    let mut cheat_ids = Vec::new();
    for (name, cheat) in cheats {
        cheat_ids.push(stake(&cluster, name));
        handles.push(start_cheater(&cluster, name, cheat, "36").await);
    }
    cluster.wait_for_online(5).await;

    let wallet_dir = cluster.wallet_dir();
    let wallet = ["--wallet-dir", wallet_dir.to_str().unwrap()];
    run_ok(&cluster, &[&["wallet", "new"][..], &wallet].concat());
    run_ok(&cluster, &[&["wallet", "faucet", "50"][..], &wallet].concat());
    let payment = "[payment]\nbudget = \"40\"\nprice_io_per_hour = \"36\"\n";
    let file = write_hash_job(cluster.dir.path(), "checked", 8, "policy = \"replicate\"\nreplicas = 2\n", payment);
    let (honest_digests, honest_result) = reference(&file);
    let out = run_ok(&cluster, &[&["job", "submit", file.to_str().unwrap()][..], &wallet].concat());
    let job_id: iog_types::JobId = out.trim().parse().unwrap();
    let status = cluster.wait_job(job_id, Duration::from_secs(90), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert_eq!((status.n_settled, status.verify.as_str()), (8, "replicate 2 of 5"), "{status:?}");

    // Every task's accepted result is the honest one, and so is the artifact.
    let by_worker = verdicts(&cluster, job_id, &honest_digests).await;
    assert_same_result(&cluster, &status, &honest_result).await;
    let of = |id: &WorkerId| by_worker.iter().find(|(w, _, _)| w == id).map_or((0, 0), |(_, v, x)| (*v, *x));
    for id in &honest {
        assert_eq!(of(id).1, 0, "an honest worker's result was judged wrong: {by_worker:?}");
    }
    // The random and other-seed cheats ran in the first round (five free
    // slots, sixteen runs) and every one of their results was wrong.
    for id in &cheat_ids[..2] {
        let (valid, wrong) = of(id);
        assert!(valid == 0 && wrong >= 1, "{id}: {by_worker:?}");
    }
    // The replayer's first result is honest; each later one is the one before.
    let (_, replay_wrong) = of(&cheat_ids[2]);

    // Wrong results were not paid; the bill pays honest work only.
    let bill = cluster.client.billing(job_id).await.unwrap();
    for id in &cheat_ids[..2] {
        let earned = bill.workers.iter().find(|w| w.worker_id == id.0).map(|w| w.earned.parse::<Amount>().unwrap());
        assert!(earned.is_none_or(|e| e.is_zero()), "{id} was paid for wrong results: {bill:?}");
    }
    // Each wrong result slashed a fifth of the stake that was left.
    for (idx, id) in cheat_ids.iter().enumerate() {
        let (_, wrong) = of(id);
        let stake = cluster.client.stake_status(&id.0).await.unwrap();
        let active: Amount = stake.active.parse().unwrap();
        if wrong > 0 {
            assert!(active < "10".parse().unwrap(), "cheat {idx} kept its stake: {stake:?}");
        }
    }
    let workers = cluster.client.workers().await.unwrap();
    for id in &cheat_ids[..2] {
        let worker = workers.iter().find(|w| &w.worker_id == id).unwrap();
        assert!(worker.results_wrong >= 1 && worker.valid_streak == 0, "{worker:?}");
        assert!(worker.reputation_milli < 500, "{worker:?}");
    }
    if replay_wrong > 0 {
        let worker = workers.iter().find(|w| w.worker_id == cheat_ids[2]).unwrap();
        assert_eq!(worker.results_wrong, u64::from(replay_wrong), "{worker:?}");
    }
    for id in &honest {
        let worker = workers.iter().find(|w| &w.worker_id == id).unwrap();
        assert!(worker.results_wrong == 0 && worker.results_valid >= 1, "{worker:?}");
    }
    let shown = run_ok(&cluster, &["worker", "show", &cheat_ids[0].0]);
    assert!(shown.contains("proven wrong"), "{shown}");
    let summary = run_ok(&cluster, &["job", "status", &job_id.to_string()]);
    assert!(summary.contains("verify: replicate 2 of 5") && summary.contains("results proven wrong"), "{summary}");

    for handle in handles {
        handle.shutdown().await;
    }
    // The audit checks from the store and journal alone that no result
    // judged wrong was paid and every accepted one was, once.
    cluster.coordinator.as_mut().unwrap().kill9();
    let data_dir = cluster.coordinator_dir();
    run_ok(&cluster, &["ledger", "verify", "--data-dir", data_dir.to_str().unwrap()]);
}

/// Two colluders return the same wrong answer. Under `replicate 3` they can
/// never fill a quorum of three, so three honest workers outvote them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colluders_agreeing_on_a_wrong_answer_are_outvoted_by_a_larger_quorum() {
    let cluster = Cluster::start(3).await;
    let honest: Vec<WorkerId> = cluster.workers.iter().map(|(id, _)| id.clone()).collect();
    let first = start_cheater(&cluster, "colluder-1", Cheat::Collude, "0").await;
    let second = start_cheater(&cluster, "colluder-2", Cheat::Collude, "0").await;
    let colluders = [first.worker_id().clone(), second.worker_id().clone()];
    cluster.wait_for_online(5).await;

    let file = write_hash_job(cluster.dir.path(), "colluded", 4, "policy = \"replicate\"\nreplicas = 3\n", "");
    let (honest_digests, honest_result) = reference(&file);
    let job_id = common::submit(&cluster, &file);
    let status = cluster.wait_job(job_id, Duration::from_secs(90), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    let by_worker = verdicts(&cluster, job_id, &honest_digests).await;
    assert_same_result(&cluster, &status, &honest_result).await;
    for (worker, valid, wrong) in &by_worker {
        if colluders.contains(worker) {
            assert_eq!(*valid, 0, "a colluder's result was accepted: {by_worker:?}");
        } else {
            assert!(honest.contains(worker) && *wrong == 0, "{by_worker:?}");
        }
    }
    let n_colluded: u32 = by_worker.iter().filter(|(w, _, _)| colluders.contains(w)).map(|(_, _, x)| x).sum();
    assert!(n_colluded >= 2, "both colluders ran in the first round: {by_worker:?}");
    first.shutdown().await;
    second.shutdown().await;
}

/// Under `spot`, each result is accepted once the coordinator recomputed a
/// sample of it; a random-bytes result fails its check, is judged wrong and
/// slashed, and its task runs again on the honest worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spot_checks_reject_a_wrong_result_and_run_its_task_again() {
    let cluster = Cluster::start_with(1, &["--faucet-max-io", "100"]).await;
    let honest = cluster.workers[0].0.clone();
    let cheat_id = stake(&cluster, "random");
    let handle = start_cheater(&cluster, "random", Cheat::RandomResult, "0").await;
    cluster.wait_for_online(2).await;

    let file = write_hash_job(cluster.dir.path(), "spotted", 6, "policy = \"spot\"\nreplicas_max = 3\n", "");
    let (honest_digests, honest_result) = reference(&file);
    let job_id = common::submit(&cluster, &file);
    let status = cluster.wait_job(job_id, Duration::from_secs(90), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert_eq!(status.verify, "spot of 3");
    let by_worker = verdicts(&cluster, job_id, &honest_digests).await;
    assert_same_result(&cluster, &status, &honest_result).await;
    let cheat = by_worker.iter().find(|(w, _, _)| *w == cheat_id).expect("the cheat ran in the first round");
    assert!(cheat.1 == 0 && cheat.2 >= 1, "{by_worker:?}");
    let honest_share = by_worker.iter().find(|(w, _, _)| *w == honest).unwrap();
    assert_eq!((honest_share.1, honest_share.2), (6, 0), "{by_worker:?}");
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    let rejected = tasks.iter().find(|t| t.committed_by.as_ref() == Some(&cheat_id)).unwrap();
    let error = rejected.last_error.as_deref().unwrap_or_default();
    assert!(error.contains("spot check failed") && error.contains("not a hash task output"), "{rejected:?}");
    let stake = cluster.client.stake_status(&cheat_id.0).await.unwrap();
    assert!(stake.active.parse::<Amount>().unwrap() < "10".parse().unwrap(), "{stake:?}");
    handle.shutdown().await;
}
