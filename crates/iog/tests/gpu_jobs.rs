//! GPU kernels end to end: a worker built with the `gpu` feature runs the
//! hash search of a job that asks for a GPU on its GPU (software Vulkan in
//! CI, offered with `--gpu-software`), says so in the task's record, and
//! gives the bytes a CPU run gives.

#![cfg(feature = "gpu")]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Cluster, submit};
use iog_ledger::Amount;
use iog_types::{DeviceKind, JobState, WorkerId};
use iog_worker::Cheat;

/// One test at a time: every test's workers run their kernels (and their
/// GPU challenges) on software Vulkan, which takes every core, and run
/// side by side they starve each other's heartbeats until leases lapse.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn write_hash_job(dir: &Path, name: &str, resources: &str) -> PathBuf {
    let text = format!(
        "[job]\nname = \"{name}\"\nworkload = \"hash\"\n\n[hash]\nalgorithm = \"sha256d\"\ndata = \"iog gpu\"\n\
         nonce_count = 400000\nnonces_per_task = 100000\ndifficulty_bits = 12\n{resources}"
    );
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    file
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hash_job_that_asks_for_a_gpu_runs_on_the_gpu_kernel_and_matches_the_cpu() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start_full(1, &[], &["--gpu-software"]).await;
    let workers = cluster.client.workers().await.unwrap();
    let gpus: Vec<_> = workers[0].devices.iter().filter(|device| device.kind == DeviceKind::Gpu).collect();
    if gpus.is_empty() {
        assert!(
            std::env::var_os("IOG_REQUIRE_GPU_ADAPTER").is_none(),
            "IOG_REQUIRE_GPU_ADAPTER is set but the worker found no GPU adapter\n{}",
            cluster.logs()
        );
        eprintln!("skipped: no GPU adapter (install mesa-vulkan-drivers for software Vulkan)");
        return;
    }
    assert!(gpus[0].source.starts_with("wgpu-"), "{gpus:?}");

    let dir = cluster.dir.path();
    let on_gpu = submit(&cluster, &write_hash_job(dir, "on-gpu", "\n[resources]\ndevice = \"gpu\"\n"));
    let on_cpu = submit(&cluster, &write_hash_job(dir, "on-cpu", ""));
    let mut results = Vec::new();
    for (job_id, device) in [(on_gpu, gpus[0].name.as_str()), (on_cpu, "cpu0")] {
        let status = cluster.wait_job(job_id, Duration::from_secs(180), |s| s.is_settled()).await;
        assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
        let tasks = cluster.client.tasks(job_id).await.unwrap();
        assert_eq!(tasks.len(), 4);
        for task in &tasks {
            assert_eq!(task.device.as_deref(), Some(device), "{task:?}");
        }
        let out = dir.join(job_id.to_string());
        let fetched = cluster.cli(&["job", "result", &job_id.to_string(), "--out", out.to_str().unwrap()]);
        assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
        let result: serde_json::Value =
            serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
        results.push(result);
    }
    // The same finds, whichever device searched (timings aside).
    for key in ["total_hashes", "found_count", "found"] {
        assert_eq!(results[0][key], results[1][key], "{key}");
    }
    assert!(results[0]["found_count"].as_u64().unwrap() > 0);

    // The task table shows where each task ran.
    let table = cluster.cli(&["job", "tasks", &on_gpu.to_string()]);
    assert!(table.status.success(), "{}", String::from_utf8_lossy(&table.stderr));
    assert!(String::from_utf8_lossy(&table.stdout).contains(&gpus[0].name));
}

/// One coordinator and one worker process offering the software GPU, and
/// that GPU's name; `None` (after saying why) where there is no adapter
/// and none is required.
async fn gpu_cluster() -> Option<(Cluster, String)> {
    let cluster = Cluster::start_full(1, &[], &["--gpu-software"]).await;
    let workers = cluster.client.workers().await.unwrap();
    let Some(gpu) = workers[0].devices.iter().find(|device| device.kind == DeviceKind::Gpu) else {
        assert!(std::env::var_os("IOG_REQUIRE_GPU_ADAPTER").is_none(), "no GPU adapter\n{}", cluster.logs());
        eprintln!("skipped: no GPU adapter (install mesa-vulkan-drivers for software Vulkan)");
        return None;
    };
    let name = gpu.name.clone();
    Some((cluster, name))
}

/// Writes `<name>-gpu.toml` (the job `text` makes, asking for a GPU) and
/// `<name>-cpu.toml` (the same on the CPU); runs the first, which must end
/// done with `n_tasks` tasks, each run on `gpu` and valid at the first
/// try; returns its `result.json` and the CPU file's reference result.
async fn gpu_job_against_cpu(
    cluster: &Cluster,
    gpu: &str,
    name: &str,
    n_tasks: usize,
    text: impl Fn(&str) -> String,
) -> (serde_json::Value, serde_json::Value) {
    let dir = cluster.dir.path();
    let on_gpu_file = dir.join(format!("{name}-gpu.toml"));
    std::fs::write(&on_gpu_file, text("\n[resources]\ndevice = \"gpu\"\n")).unwrap();
    let cpu_file = dir.join(format!("{name}-cpu.toml"));
    std::fs::write(&cpu_file, text("")).unwrap();
    let job_id = submit(cluster, &on_gpu_file);
    let status = cluster.wait_job(job_id, Duration::from_secs(180), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    assert_eq!(tasks.len(), n_tasks, "every spot check passed the first time: {tasks:?}");
    for task in &tasks {
        assert_eq!(task.device.as_deref(), Some(gpu), "{task:?}\n{}", cluster.logs());
        assert_eq!(task.verdict.as_deref(), Some("valid"), "{task:?}");
    }
    let out = dir.join(format!("{name}-gpu"));
    let fetched = cluster.cli(&["job", "result", &job_id.to_string(), "--out", out.to_str().unwrap()]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
    let got: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("result.json")).unwrap()).unwrap();
    let (_, cpu) = common::reference(&cpu_file);
    (got, serde_json::from_slice(&cpu).unwrap())
}

/// A `sim` job that asks for a GPU runs its samples on the GPU kernel in
/// `f32`; the coordinator's spot checks recompute blocks on its CPU in
/// `f64` and pass them within the model's tolerance, and the estimate is
/// the CPU's to within that tolerance.
#[tokio::test(flavor = "multi_thread")]
async fn a_sim_job_on_the_gpu_passes_the_cpus_spot_checks_within_tolerance() {
    let _serial = SERIAL.lock().await;
    let Some((cluster, gpu)) = gpu_cluster().await else { return };
    let text = |resources: &str| {
        format!(
            "[job]\nname = \"slab\"\nworkload = \"sim\"\n\n[sim]\nmodel = \"slab\"\ntasks = 4\nsamples_per_task = 200000\n\
             seed = 5\n\n[verify]\npolicy = \"spot\"\n{resources}"
        )
    };
    let (got, cpu) = gpu_job_against_cpu(&cluster, &gpu, "sim", 4, text).await;
    let (got, want) = (got["estimate"].as_f64().unwrap(), cpu["estimate"].as_f64().unwrap());
    // The slab's tolerance: 10⁻³ of the scale, and a few particles a block.
    assert!((got - want).abs() <= 2e-3 * want + 8.0 * 64.0 / 800_000.0, "GPU {got}, CPU {want}");
}

/// An `nbody` job that asks for a GPU runs each window's steps on the GPU
/// kernel in `f64`, chained window to window; the coordinator's spot
/// checks recompute segments on its CPU and pass them within the
/// tolerance, and the energies are the CPU run's.
#[tokio::test(flavor = "multi_thread")]
async fn an_nbody_job_on_the_gpu_chains_its_windows_and_passes_the_cpus_spot_checks() {
    let _serial = SERIAL.lock().await;
    let Some((cluster, gpu)) = gpu_cluster().await else { return };
    let text = |resources: &str| {
        format!(
            "[job]\nname = \"cluster\"\nworkload = \"nbody\"\n\n[nbody]\nparticles = 96\nwindows = 3\n\
             steps_per_window = 40\ndt = 0.001\nseed = 3\n\n[verify]\npolicy = \"spot\"\n{resources}"
        )
    };
    let (got, cpu) = gpu_job_against_cpu(&cluster, &gpu, "nbody", 3, text).await;
    assert_eq!(got["energy_start"], cpu["energy_start"], "the start is generated on the CPU either way");
    let (got_end, cpu_end) = (&got["energy_end"], &cpu["energy_end"]);
    for window in 0..3 {
        let (got, want) = (got_end[window].as_f64().unwrap(), cpu_end[window].as_f64().unwrap());
        assert!((got - want).abs() <= 1e-9 * want.abs(), "window {window}: GPU {got}, CPU {want}");
    }
}

/// Starts a worker in this process that offers the software GPU and
/// behaves as `cheat` says, with one slot.
async fn start_gpu_worker(cluster: &Cluster, name: &str, cheat: Cheat) -> iog_worker::WorkerHandle {
    common::start_in_process(cluster, name, cheat, |config| config.gpu.software = true).await
}

/// A `sim` job that asks for a GPU, replicated: one worker's results are
/// the right ones in other bits (as another vendor's `f32` sums would be),
/// another's a valid result of another seed. The coordinator compares the
/// differing replicas within the model's tolerance: the right ones agree
/// and are paid, the other-seed one is outvoted and slashed, and the
/// estimate is the honest one to within the tolerance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sim_results_in_other_bits_agree_within_tolerance_and_wrong_ones_are_still_caught() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start_full(1, &["--faucet-max-io", "100"], &["--gpu-software"]).await;
    let workers = cluster.client.workers().await.unwrap();
    if !workers[0].devices.iter().any(|device| device.kind == DeviceKind::Gpu) {
        assert!(std::env::var_os("IOG_REQUIRE_GPU_ADAPTER").is_none(), "no GPU adapter\n{}", cluster.logs());
        eprintln!("skipped: no GPU adapter (install mesa-vulkan-drivers for software Vulkan)");
        return;
    }
    let honest = workers[0].worker_id.clone();
    let elsewhere = start_gpu_worker(&cluster, "other-bits", Cheat::OtherPrecision).await;
    let elsewhere_id = elsewhere.worker_id().clone();
    let cheat_id = common::stake(&cluster, "other-seed");
    let cheat = start_gpu_worker(&cluster, "other-seed", Cheat::OtherSeed).await;
    cluster.wait_for_online(3).await;

    let file = cluster.dir.path().join("sim.toml");
    let text = "[job]\nname = \"sim across devices\"\nworkload = \"sim\"\n\n[sim]\nmodel = \"option\"\ntasks = 4\n\
                samples_per_task = 20000\nseed = 9\n\n[resources]\ndevice = \"gpu\"\n\n[verify]\npolicy = \"replicate\"\n\
                replicas = 2\n";
    std::fs::write(&file, text).unwrap();
    let job_id = submit(&cluster, &file);
    let status = cluster.wait_job(job_id, Duration::from_secs(120), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());

    let tasks = cluster.client.tasks(job_id).await.unwrap();
    let verdict_of = |worker: &WorkerId, verdict: &str| {
        tasks
            .iter()
            .filter(|t| t.committed_by.as_ref() == Some(worker) && t.verdict.as_deref() == Some(verdict))
            .count()
    };
    assert!(verdict_of(&elsewhere_id, "valid") >= 1, "the other-bits worker ran and was paid: {tasks:?}");
    assert_eq!(verdict_of(&elsewhere_id, "wrong") + verdict_of(&honest, "wrong"), 0, "{tasks:?}");
    assert_eq!(verdict_of(&cheat_id, "valid"), 0, "{tasks:?}");
    assert!(verdict_of(&cheat_id, "wrong") >= 1, "the other-seed cheat ran in the first round: {tasks:?}");
    // Some task was settled by two valid results in different bits: compared, not matched.
    let compared = (0..4).any(|task_idx| {
        let valid: Vec<_> = tasks
            .iter()
            .filter(|t| t.task_id.task_idx % 4 == task_idx && t.verdict.as_deref() == Some("valid"))
            .filter_map(|t| t.output)
            .collect();
        valid.len() >= 2 && valid.iter().any(|o| *o != valid[0])
    });
    assert!(compared, "{tasks:?}");
    // The estimate is the CPU's, to within the tolerance.
    let artifact = status.artifacts.iter().find(|a| a.name == "result.json").unwrap();
    let got: serde_json::Value =
        serde_json::from_slice(&cluster.client.get_blob(artifact.blob).await.unwrap()).unwrap();
    let cpu_file = cluster.dir.path().join("sim-cpu.toml");
    std::fs::write(&cpu_file, text.replace("[resources]\ndevice = \"gpu\"\n", "")).unwrap();
    let (_, cpu) = common::reference(&cpu_file);
    let want: serde_json::Value = serde_json::from_slice(&cpu).unwrap();
    let (got, want) = (got["estimate"].as_f64().unwrap(), want["estimate"].as_f64().unwrap());
    assert!((got - want).abs() <= 1e-4 * want.abs(), "{got} against {want}");
    let stake = cluster.client.stake_status(&cheat_id.0).await.unwrap();
    assert!(stake.active.parse::<Amount>().unwrap() < "10".parse().unwrap(), "{stake:?}");
    elsewhere.shutdown().await;
    cheat.shutdown().await;
}

/// Waits until the worker's status meets `until`.
async fn wait_worker(
    cluster: &Cluster,
    worker_id: &WorkerId,
    what: &str,
    until: impl Fn(&iog_proto::api::WorkerStatus) -> bool,
) -> iog_proto::api::WorkerStatus {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let workers = cluster.client.workers().await.unwrap();
        if let Some(worker) = workers.iter().find(|w| &w.worker_id == worker_id)
            && until(worker)
        {
            return worker.clone();
        }
        assert!(std::time::Instant::now() < deadline, "{what}: {workers:?}\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A GPU the worker runs kernels on is challenged on it, at its model's
/// rate, by the GPU's own kernel: the honest worker's software GPU passes
/// and the worker is verified. A worker that reports the same software GPU
/// as an H100 is held to a GPU's rate, misses the deadline on its GPU
/// challenge (after passing its CPU's), and takes no task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gpu_is_challenged_at_its_model_s_rate_and_one_claiming_an_h100_is_caught() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start_full(1, &["--challenge-retry-ms", "300"], &["--gpu-software"]).await;
    let workers = cluster.client.workers().await.unwrap();
    let Some(gpu) = workers[0].devices.iter().find(|device| device.kind == DeviceKind::Gpu) else {
        assert!(std::env::var_os("IOG_REQUIRE_GPU_ADAPTER").is_none(), "no GPU adapter\n{}", cluster.logs());
        eprintln!("skipped: no GPU adapter (install mesa-vulkan-drivers for software Vulkan)");
        return;
    };
    assert!(gpu.kernels, "the worker runs its kernels on {gpu:?}");
    let honest = workers[0].worker_id.clone();
    let verified =
        wait_worker(&cluster, &honest, "the honest worker was not verified", |w| w.challenges_passed >= 1).await;
    assert_eq!(verified.challenges_failed, 0, "{verified:?}");
    let log = cluster.coordinator.as_ref().unwrap().log_text();
    let passed = format!("GPUs {} ({}) ", gpu.name, gpu.model);
    assert!(
        log.lines().any(|line| line.contains("hardware challenge passed") && line.contains(&passed)),
        "the honest worker's GPU passed its compute challenge and puzzle:\n{log}"
    );

    let liar = start_gpu_worker(&cluster, "fake-h100", Cheat::ClaimFasterGpu).await;
    let liar_id = liar.worker_id().clone();
    let caught = wait_worker(&cluster, &liar_id, "the fake H100 was not caught", |w| w.challenges_failed >= 1).await;
    assert_eq!(caught.challenges_passed, 0, "{caught:?}");
    assert!(!caught.available, "a worker that failed its challenge takes no tasks: {caught:?}");
    let claimed: Vec<_> =
        caught.devices.iter().filter(|d| d.kind == DeviceKind::Gpu).map(|d| d.model.as_str()).collect();
    assert_eq!(claimed, [iog_worker::CLAIMED_GPU]);
    let log = cluster.coordinator.as_ref().unwrap().log_text();
    let why = format!("{} ({}): missed the deadline for the compute challenge's commitment", gpu.name, claimed[0]);
    assert!(log.contains(&why), "the failure names the GPU and what it missed:\n{log}");
    liar.shutdown().await;
}

/// A render job that asks for a GPU, replicated over two worker processes
/// with software GPUs: every tile is traced by the GPU kernel, the
/// replicas are compared within the PSNR bound, and the image is the CPU
/// render's within it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_render_job_on_gpus_matches_the_cpu_render_within_the_psnr_bound() {
    let _serial = SERIAL.lock().await;
    let cluster = Cluster::start_full(2, &[], &["--gpu-software"]).await;
    let workers = cluster.client.workers().await.unwrap();
    if !workers.iter().all(|w| w.devices.iter().any(|device| device.kind == DeviceKind::Gpu)) {
        assert!(std::env::var_os("IOG_REQUIRE_GPU_ADAPTER").is_none(), "no GPU adapter\n{}", cluster.logs());
        eprintln!("skipped: no GPU adapter (install mesa-vulkan-drivers for software Vulkan)");
        return;
    }
    let dir = cluster.dir.path();
    let cpu_file = common::write_render_job(dir, 48, 32, 16, 24);
    let text = std::fs::read_to_string(&cpu_file).unwrap()
        + "\n[resources]\ndevice = \"gpu\"\n\n[verify]\npolicy = \"replicate\"\nreplicas = 2\n";
    let gpu_file = dir.join("render-gpu.toml");
    std::fs::write(&gpu_file, text).unwrap();
    let job_id = submit(&cluster, &gpu_file);
    let status = cluster.wait_job(job_id, Duration::from_secs(180), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    assert!(!tasks.is_empty());
    for task in &tasks {
        assert!(task.device.as_deref().is_some_and(|device| device.starts_with("gpu")), "{task:?}");
        assert_ne!(task.verdict.as_deref(), Some("wrong"), "{task:?}");
    }
    let png = cluster.client.get_blob(status.artifacts[0].blob).await.unwrap();
    let (width, height, rgb) = common::decode_png(&png);
    let (want_width, want_height, want) = common::reference_render(&cpu_file);
    assert_eq!((width, height), (want_width, want_height));
    let db = iog_workloads::render::kernel::psnr(&rgb, &want);
    eprintln!("GPU render against the CPU's: {db:.1} dB");
    assert!(db >= iog_workloads::render::kernel::PSNR_MIN_DB, "{db:.1} dB");
}
