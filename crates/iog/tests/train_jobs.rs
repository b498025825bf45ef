//! `train` jobs end to end: a model trained DiLoCo-style by worker
//! processes on loopback, round after round, the coordinator taking each
//! outer step; one worker killed in the middle of a round.

mod common;

use std::path::Path;
use std::time::Duration;

use common::{Cluster, submit};
use iog_types::JobState;

/// The workers these tests start are this build's `iog` binary; without
/// the ML runtime they offer no `ml` and a train job would wait forever.
fn require_ml_runtime() {
    // Constant for a build, but which constant depends on the features
    // this test binary (and so the worker binary) was built with.
    #[allow(clippy::assertions_on_constants)]
    let () = assert!(
        iog_workloads::train::ML_RUNTIME,
        "these tests train models on worker processes, whose binary needs the ML runtime: run them with \
         `cargo test --workspace` or `cargo test -p iog --features ml`"
    );
}

fn write_job(dir: &Path, name: &str, workers: u32, rounds: u32, inner_steps: u32) -> std::path::PathBuf {
    let file = dir.join(format!("{name}.toml"));
    let text = format!(
        "[job]\nname = \"{name}\"\nworkload = \"train\"\n\n[train]\n\
         model = {{ kind = \"mlp\", inputs = 2, hidden = [32, 32], outputs = 3 }}\n\
         data = {{ kind = \"spirals\", examples = 900, classes = 3, seed = 5 }}\n\
         workers = {workers}\nrounds = {rounds}\ninner_steps = {inner_steps}\nbatch_size = 32\nlr = 0.02\nseed = 4\n"
    );
    std::fs::write(&file, text).unwrap();
    file
}

/// Fetches a done job's artifacts; returns its `result.json`.
fn fetch(cluster: &Cluster, job_id: iog_types::JobId, out: &Path) -> serde_json::Value {
    let fetched = cluster.cli(&["job", "result", &job_id.to_string(), "--out", out.to_str().unwrap()]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    let listed = String::from_utf8_lossy(&fetched.stdout);
    for name in ["result.json", "weights.safetensors", "loss.csv", "loss.png"] {
        assert!(listed.contains(name), "{name} is not among the results: {listed}");
    }
    assert!(listed.contains("held-out loss ") && listed.contains("fewer than f32"), "no summary line: {listed}");
    let png = std::fs::read(out.join("loss.png")).unwrap();
    let (width, height, _) = common::decode_png(&png);
    assert_eq!((width, height), (800, 500));
    serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap()
}

/// Two workers train a spirals classifier in 4 rounds, every result
/// replicated; the held-out loss falls, and every artifact is what one
/// machine computes (training repeats bit for bit on one CPU).
#[tokio::test(flavor = "multi_thread")]
async fn a_model_trained_in_rounds_over_worker_processes_lowers_its_loss_and_equals_one_machines_run() {
    require_ml_runtime();
    let cluster = Cluster::start(2).await;
    let workers = cluster.client.workers().await.unwrap();
    let offers_ml =
        |w: &iog_proto::api::WorkerStatus| w.offer.as_ref().is_some_and(|o| o.software.iter().any(|s| s.name == "ml"));
    assert!(workers.iter().all(offers_ml), "{workers:?}");
    let file = write_job(cluster.dir.path(), "spirals", 2, 4, 60);
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str("\n[verify]\npolicy = \"replicate\"\nreplicas = 2\n");
    std::fs::write(&file, text).unwrap();
    let (digests, expected) = common::reference(&file);
    assert_eq!(digests.len(), 10);

    let job_id = submit(&cluster, &file);
    let status = cluster.wait_job(job_id, Duration::from_secs(180), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    assert_eq!(status.workers.len(), 2, "{:?}", status.workers);
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    for (task_idx, digest) in digests.iter().enumerate() {
        let task = tasks.iter().find(|t| t.task_id.task_idx as usize == task_idx).unwrap();
        assert_eq!(task.accepted_output, Some(*digest), "task {task_idx}: {task:?}");
    }

    let out = cluster.dir.path().join("spirals-out");
    let result = fetch(&cluster, job_id, &out);
    let (first, last) = (result["eval_loss_initial"].as_f64().unwrap(), result["eval_loss_final"].as_f64().unwrap());
    assert!(last < 0.8 * first, "held-out loss {first} → {last}: {result}");
    assert_eq!(std::fs::read(out.join("result.json")).unwrap(), expected, "the network's answer is one machine's");
    let csv = std::fs::read_to_string(out.join("loss.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 1 + 4 * 60, "{csv}");
}

/// Three workers, rounds of two tasks: the worker that holds a task of
/// round 1 is killed with SIGKILL. Its lease lapses, the task is placed on
/// another worker, the round completes and training goes on to the end
/// with the loss still falling, the same result as one machine's run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_round_is_replaced_and_training_completes() {
    require_ml_runtime();
    let mut cluster = Cluster::start(3).await;
    // Rounds long enough (a few seconds each) to kill a worker inside one.
    let file = write_job(cluster.dir.path(), "killed", 2, 3, 4000);
    let (_, expected) = common::reference(&file);
    let job_id = submit(&cluster, &file);

    // Round 0 settled, and a worker holds a task of round 1.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let victim = loop {
        let tasks = cluster.client.tasks(job_id).await.unwrap();
        let held = tasks.iter().find(|t| t.task_id.task_idx >= 2 && t.holder.is_some() && t.output.is_none());
        if let Some(task) = held {
            break task.holder.clone().unwrap();
        }
        assert!(std::time::Instant::now() < deadline, "no task of round 1 was leased: {tasks:?}\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let idx = cluster.workers.iter().position(|(id, _)| *id == victim).unwrap();
    cluster.workers[idx].1.kill9();

    let status = cluster.wait_job(job_id, Duration::from_secs(300), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    let replaced: Vec<_> = tasks.iter().filter(|t| t.attempts >= 2).collect();
    assert!(!replaced.is_empty(), "the killed worker's task was leased again: {tasks:?}");
    assert!(replaced.iter().all(|t| t.committed_by.as_ref() != Some(&victim)), "{replaced:?}");

    let out = cluster.dir.path().join("killed-out");
    let result = fetch(&cluster, job_id, &out);
    let (first, last) = (result["eval_loss_initial"].as_f64().unwrap(), result["eval_loss_final"].as_f64().unwrap());
    assert!(last < 0.8 * first, "held-out loss {first} → {last}: {result}");
    assert_eq!(std::fs::read(out.join("result.json")).unwrap(), expected, "the network's answer is one machine's");
}

/// A model trained on the network from a CSV file larger than a spec
/// may carry, then run by an `infer` job over a CSV of new points cut
/// into three shards on two workers, every shard
/// replicated: `iog job submit` reads the model from the weights'
/// metadata and uploads the files, and the predictions put together are
/// what one process computes from the same weights over the whole file.
#[tokio::test(flavor = "multi_thread")]
async fn an_infer_job_runs_trained_weights_over_shards_and_matches_one_process() {
    require_ml_runtime();
    let cluster = Cluster::start(2).await;
    let dir = cluster.dir.path();
    // Trained on a CSV file of 100 000 labelled points, 2.5 MB: more than a
    // spec could carry, so `iog job submit` uploads it and the coordinator
    // reads it to cut the shards.
    let points = iog_ml::spirals(100_000, 3, 5).unwrap();
    let mut csv = String::from("x,y,class\n");
    for (row, label) in points.features().unwrap().chunks(2).zip(points.labels().unwrap()) {
        csv.push_str(&format!("{},{},{label}\n", row[0], row[1]));
    }
    assert!(csv.len() > 2 << 20, "{} bytes", csv.len());
    std::fs::write(dir.join("train.csv"), &csv).unwrap();
    let train = dir.join("trained.toml");
    std::fs::write(
        &train,
        "[job]\nname = \"trained\"\nworkload = \"train\"\n\n[train]\n\
         model = { kind = \"mlp\", inputs = 2, hidden = [32, 32], outputs = 3 }\n\
         data = { kind = \"csv\", file = \"train.csv\", target = \"class\" }\n\
         workers = 2\nrounds = 4\ninner_steps = 150\nbatch_size = 32\nlr = 0.02\nseed = 4\n",
    )
    .unwrap();
    let job_id = submit(&cluster, &train);
    let status = cluster.wait_job(job_id, Duration::from_secs(180), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    fetch(&cluster, job_id, &dir.join("trained-out"));

    // New points of the same spirals, labelled, as CSV.
    let points = iog_ml::spirals(250, 3, 77).unwrap();
    let x = points.features().unwrap();
    let labels = points.labels().unwrap();
    let mut csv = String::from("x,y,class\n");
    for (row, label) in x.chunks(2).zip(labels) {
        csv.push_str(&format!("{},{},{label}\n", row[0], row[1]));
    }
    std::fs::write(dir.join("points.csv"), &csv).unwrap();
    let job = dir.join("infer.toml");
    std::fs::write(
        &job,
        "[job]\nname = \"predict\"\nworkload = \"infer\"\n\n[infer]\nweights = \"trained-out/weights.safetensors\"\n\
         data = { kind = \"csv\", file = \"points.csv\", target = \"class\" }\ntasks = 3\noutput = \"class\"\n\n\
         [verify]\npolicy = \"replicate\"\nreplicas = 2\n",
    )
    .unwrap();
    let job_id = submit(&cluster, &job);
    let status = cluster.wait_job(job_id, Duration::from_secs(120), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    assert_eq!((status.n_tasks, status.n_settled), (3, 3), "{status:?}");
    for task_idx in 0..3 {
        let task = tasks.iter().find(|t| t.task_id.task_idx == task_idx).unwrap();
        assert!(task.accepted_output.is_some(), "shard {task_idx}: {task:?}");
    }

    let out = dir.join("infer-out");
    let fetched = cluster.cli(&["job", "result", &job_id.to_string(), "--out", out.to_str().unwrap()]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    let predictions = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();

    // One process: the same weights over the whole file at once.
    let model = iog_ml::ModelSpec::Mlp { inputs: 2, hidden: vec![32, 32], outputs: 3 };
    let weights = iog_workloads::infer::read_weights(
        &std::fs::read(dir.join("trained-out/weights.safetensors")).unwrap(),
        &model,
    )
    .unwrap();
    let logits = iog_ml::infer(&model, &weights, iog_ml::Inputs::Features(x)).unwrap();
    let mut lines = predictions.lines();
    assert_eq!(lines.next(), Some("row,class,probability,label"));
    let mut correct = 0;
    for (i, line) in lines.enumerate() {
        let row = &logits[i * 3..i * 3 + 3];
        let best = (0..3).fold(0, |b, j| if row[j] > row[b] { j } else { b });
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields[..2], [i.to_string(), best.to_string()], "row {i}");
        assert_eq!(fields[3], labels[i].to_string());
        correct += usize::from(best == labels[i] as usize);
    }
    assert_eq!(result["rows"], 250);
    assert_eq!(result["accuracy"].as_f64().unwrap(), correct as f64 / 250.0);
    assert!(correct > 250 / 2, "a trained model beats a third: {correct} of 250 right");
}

/// An infer job that verifies nothing, and a worker that answers with
/// random bytes: the coordinator reads each output as it arrives, refuses
/// the malformed ones (the run fails, the task is tried again) and the
/// job completes on the honest worker's outputs, where it used to end done
/// with outputs nothing could assemble.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_outputs_are_refused_on_arrival_and_their_tasks_run_again() {
    require_ml_runtime();
    let mut cluster = Cluster::start(0).await;
    let dir = cluster.dir.path().to_owned();
    let cheater = common::start_in_process(&cluster, "cheater", iog_worker::Cheat::RandomResult, |_| {}).await;
    cluster.wait_for_online(1).await;

    let model = iog_ml::ModelSpec::Mlp { inputs: 2, hidden: vec![8], outputs: 3 };
    let weights = iog_ml::init_weights(&model, 2).unwrap();
    let file = iog_workloads::infer::weights_safetensors(&model, &weights, Default::default()).unwrap();
    std::fs::write(dir.join("weights.safetensors"), file).unwrap();
    let job = dir.join("garbled.toml");
    std::fs::write(
        &job,
        "[job]\nname = \"garbled\"\nworkload = \"infer\"\nmax_attempts = 50\n\n[infer]\n\
         weights = \"weights.safetensors\"\ndata = { kind = \"spirals\", examples = 300, classes = 3 }\ntasks = 3\n",
    )
    .unwrap();
    let job_id = submit(&cluster, &job);

    // The cheater alone: its outputs are refused, one after another.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let tasks = cluster.client.tasks(job_id).await.unwrap();
        if tasks.iter().any(|t| t.last_error.as_deref().is_some_and(|e| e.contains("its output is malformed"))) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no output was refused: {tasks:?}\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(cluster.client.job(job_id).await.unwrap().state, JobState::Running);

    cluster.start_worker(0);
    let status = cluster.wait_job(job_id, Duration::from_secs(120), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    drop(cheater);
    let out = dir.join("garbled-out");
    let fetched = cluster.cli(&["job", "result", &job_id.to_string(), "--out", out.to_str().unwrap()]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    let predictions = std::fs::read_to_string(out.join("predictions.csv")).unwrap();
    assert_eq!(predictions.lines().count(), 301);
    // Each row is what the weights give.
    let points = iog_ml::spirals(300, 3, 0).unwrap();
    let logits = iog_ml::infer(&model, &weights, iog_ml::Inputs::Features(points.features().unwrap())).unwrap();
    for (i, line) in predictions.lines().skip(1).enumerate() {
        let fields: Vec<f32> = line.split(',').skip(1).take(3).map(|f| f.parse().unwrap()).collect();
        assert_eq!(fields, logits[i * 3..i * 3 + 3], "row {i}");
    }
}
