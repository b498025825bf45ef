//! `wasm` jobs end to end: a coordinator and worker processes on loopback
//! (built with `--features wasm`) run a user's WebAssembly module per task,
//! verify replicas by digest, and stop modules that misbehave without
//! losing the worker.
#![cfg(feature = "wasm")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Cluster, submit};
use iog_types::{BlobId, JobState};

fn wasm_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/wasm")
}

/// A wasm job file in `dir` running `module` with `args` over `tasks` tasks,
/// plus any extra lines for its `[wasm]` and a trailing section.
fn write_job(dir: &Path, name: &str, module: &str, args: &[&str], tasks: u32, wasm_extra: &str, tail: &str) -> PathBuf {
    let module = wasm_dir().join(module);
    let args: Vec<String> = args.iter().map(|arg| format!("{arg:?}")).collect();
    let text = format!(
        "[job]\nname = \"{name}\"\nworkload = \"wasm\"\nmax_attempts = 2\n\n[wasm]\nmodule = {module:?}\n\
         args = [{}]\ntasks = {tasks}\n{wasm_extra}\n{tail}",
        args.join(", "),
        module = module.to_str().unwrap(),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// What task `task_idx` of the montecarlo example gives when run here, in
/// the same sandbox and with the same seed a worker uses.
fn local_montecarlo(args: &[String], task_idx: u32, n_tasks: u32) -> Vec<u8> {
    let module = std::fs::read(wasm_dir().join("montecarlo.wasm")).unwrap();
    let executor = iog_exec::WasmExecutor::new().unwrap();
    let task = iog_exec::WasmTask {
        module: &module,
        name: "montecarlo.wasm",
        args,
        env: &[],
        inputs: &[],
        task_idx,
        n_tasks,
        seed: iog_workloads::wasm::task_seed(&BlobId::of(&module), task_idx),
        cancel: None,
    };
    let work = tempfile::tempdir().unwrap();
    // The executor blocks its thread (WASI's calls run their own runtime),
    // so it runs beside the test's async runtime, as on a worker.
    std::thread::scope(|scope| {
        let run = scope.spawn(|| executor.run(&task, &iog_exec::WasmLimits::default(), work.path()));
        run.join().unwrap().unwrap().output.entries["out/result.json"].clone()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wasm_job_runs_on_two_workers_and_its_replicas_agree_byte_for_byte() {
    let cluster = Cluster::start_full(2, &[], &["--wasm"]).await;
    let args = ["--samples", "200000", "--seed", "5"];
    let file =
        write_job(cluster.dir.path(), "pi", "montecarlo.wasm", &args, 4, "", "[verify]\npolicy = \"replicate\"\n");
    let job_id = submit(&cluster, &file);
    let status = cluster.wait_job(job_id, Duration::from_secs(120), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    // Replicated twice on two workers: each worker ran every task.
    assert_eq!(status.workers.len(), 2, "{:?}", status.workers);
    assert!(status.workers.iter().all(|share| share.n_committed == 4), "{:?}", status.workers);

    let out = cluster.dir.path().join("result");
    let fetched = cluster.cli(&["job", "result", &job_id.to_string(), "--out", out.to_str().unwrap()]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    let owned: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let mut inside = 0u64;
    for task_idx in 0..4u32 {
        let result = std::fs::read(out.join(format!("task-{task_idx:06}-result.json"))).unwrap();
        assert_eq!(result, local_montecarlo(&owned, task_idx, 4), "task {task_idx}");
        let stdout = std::fs::read(out.join(format!("task-{task_idx:06}-stdout"))).unwrap();
        assert_eq!(stdout.trim_ascii_end(), result.as_slice());
        let value: serde_json::Value = serde_json::from_slice(&result).unwrap();
        assert_eq!(value["task"], task_idx);
        inside += value["inside"].as_u64().unwrap();
    }
    let estimate = 4.0 * inside as f64 / 800_000.0;
    assert!((estimate - std::f64::consts::PI).abs() < 0.02, "pi ≈ {estimate}");
}

#[tokio::test(flavor = "multi_thread")]
async fn modules_that_loop_or_grab_memory_fail_with_clear_errors_and_the_worker_keeps_serving() {
    let cluster = Cluster::start_full(1, &[], &["--wasm"]).await;
    let dir = cluster.dir.path();
    let looping = write_job(dir, "loop", "sandbox-probe.wasm", &["loop"], 1, "fuel = 50_000_000", "");
    let greedy = write_job(dir, "alloc", "sandbox-probe.wasm", &["alloc", "64"], 1, "memory_mib = 16", "");
    let network = write_job(dir, "net", "sandbox-probe.wasm", &["net", "127.0.0.1:9"], 1, "", "");
    let escape = write_job(dir, "escape", "sandbox-probe.wasm", &["read", "/etc/passwd"], 1, "", "");
    let cases = [
        (looping, "used its whole budget of 50000000 instructions"),
        (greedy, "grow its memory past its cap of 16777216 bytes"),
        (network, "exited with code 4"),
        (escape, "exited with code 3"),
    ];
    for (file, words) in cases {
        let job_id = submit(&cluster, &file);
        let status = cluster.wait_job(job_id, Duration::from_secs(60), |s| s.state.is_final()).await;
        assert_eq!(status.state, JobState::Failed, "{}: {status:?}", file.display());
        let tasks = cluster.client.tasks(job_id).await.unwrap();
        let error = tasks[0].last_error.clone().unwrap_or_default();
        assert!(error.contains(words), "{}: {error}", file.display());
    }
    // The same worker, still online, runs a well-behaved module.
    let ok = write_job(dir, "ok", "sandbox-probe.wasm", &["ok", "still here"], 2, "", "");
    let job_id = submit(&cluster, &ok);
    let status = cluster.wait_job(job_id, Duration::from_secs(60), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    let out = dir.join("ok-result");
    let fetched = cluster.cli(&["job", "result", &job_id.to_string(), "--out", out.to_str().unwrap()]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    assert_eq!(std::fs::read(out.join("task-000001-ok.txt")).unwrap(), b"still here");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wasm_job_waits_for_a_worker_that_runs_wasm_and_its_files_stay_private() {
    // One worker whose owner has not turned wasm on.
    let cluster = Cluster::start(1).await;
    let dir = cluster.dir.path();
    let file = write_job(dir, "waits", "montecarlo.wasm", &["--samples", "1000"], 1, "", "");
    let job_id = submit(&cluster, &file);
    let status = cluster.wait_job(job_id, Duration::from_secs(30), |s| s.waiting_reason.is_some()).await;
    let reason = status.waiting_reason.unwrap();
    assert!(reason.contains("running wasm") && reason.contains("[executors.wasm]"), "{reason}");
    assert_eq!(status.tasks.queued, 1);

    // The module is readable by its submitter, and by no worker that holds
    // none of the job's leases.
    let module = BlobId::of(&std::fs::read(wasm_dir().join("montecarlo.wasm")).unwrap());
    assert!(cluster.client.get_blob(module).await.is_ok());
    let worker = cluster.client_for(&dir.join("worker-0"));
    let err = worker.get_blob(module).await.unwrap_err();
    assert!(err.to_string().contains("blob_not_found"), "{err}");

    // A spec naming a file its submitter never uploaded is refused.
    let spec = serde_json::json!({
        "job": { "name": "unsent", "workload": "wasm" },
        "wasm": { "module": { "name": "m.wasm", "blob": BlobId([3; 32]) }, "tasks": 1 },
    });
    iog_workloads::parse_job_json(spec.to_string().as_bytes()).unwrap();
    let err = cluster.client.submit(spec).await;
    let err = err.unwrap_err().to_string();
    assert!(err.contains("job_file_missing") && err.contains("PUT /v1/blobs"), "{err}");

    // A job file naming a module that is not there says which and where.
    let missing = dir.join("missing.toml");
    std::fs::write(&missing, "[job]\nname = \"m\"\nworkload = \"wasm\"\n[wasm]\nmodule = \"nope.wasm\"\n").unwrap();
    let out = cluster.cli(&["job", "submit", missing.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("wasm.module") && stderr.contains("nope.wasm"), "{stderr}");
}
