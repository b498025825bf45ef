//! `process` and `blender` jobs end to end: a coordinator and worker
//! processes on loopback (`iog worker --process`) run users' commands under
//! bubblewrap, verify replicas by digest, and stop commands that misbehave
//! without losing the worker.
//!
//! Needs `bwrap` (Debian: bubblewrap) and `prlimit`; the Blender test also
//! needs `blender`. Where they are missing these tests say so and pass,
//! unless `IOG_REQUIRE_SANDBOX` (or `IOG_REQUIRE_BLENDER`) is set, as
//! `.ci/run` sets them after installing both.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Cluster, submit};
use iog_proto::api::JobStatus;
use iog_types::JobState;

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// Whether the sandbox can run here; panics when it must and cannot.
fn sandbox_ready() -> bool {
    match iog_exec::ProcessExecutor::new() {
        Ok(_) => true,
        Err(err) if std::env::var_os("IOG_REQUIRE_SANDBOX").is_none() => {
            eprintln!("skipping: {err}");
            false
        }
        Err(err) => panic!("IOG_REQUIRE_SANDBOX is set but {err}"),
    }
}

/// A process job file in `dir`: `program` with `args` over `tasks` tasks,
/// plus extra lines for its `[process]` section.
fn write_job(dir: &Path, name: &str, program: &str, args: &[&str], tasks: u32, extra: &str) -> PathBuf {
    let args: Vec<String> = args.iter().map(|arg| format!("{arg:?}")).collect();
    // Small limits, unless `extra` sets its own.
    let defaults: String = [("memory_mib", "256"), ("cpu_s", "30"), ("timeout_ms", "30000")]
        .iter()
        .filter(|(key, _)| !extra.contains(&format!("{key} =")))
        .map(|(key, value)| format!("{key} = {value}\n"))
        .collect();
    let text = format!(
        "[job]\nname = \"{name}\"\nworkload = \"process\"\nmax_attempts = 1\n\n[process]\nprogram = {program:?}\n\
         args = [{}]\ntasks = {tasks}\n{defaults}{extra}\n",
        args.join(", "),
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

async fn run_to_end(cluster: &Cluster, file: &Path) -> (iog_types::JobId, JobStatus) {
    let job_id = submit(cluster, file);
    let status = cluster.wait_job(job_id, Duration::from_secs(120), |s| s.is_settled()).await;
    (job_id, status)
}

fn fetch(cluster: &Cluster, job_id: iog_types::JobId, out: &Path) {
    let fetched = cluster.cli(&["job", "result", &job_id.to_string(), "--out", out.to_str().unwrap()]);
    assert!(fetched.status.success(), "{}", String::from_utf8_lossy(&fetched.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_python_script_runs_over_data_shards_on_two_workers_and_replicas_agree() {
    if !sandbox_ready() {
        return;
    }
    let cluster = Cluster::start_full(2, &[], &["--process", "--memory-gib", "0.5"]).await;
    // The example as a user runs it: one task per shard, verified by replicas.
    let (job_id, status) = run_to_end(&cluster, &examples().join("process/stats.toml")).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    assert_eq!(status.workers.len(), 2, "{:?}", status.workers);
    assert!(status.workers.iter().all(|share| share.n_committed == 4), "{:?}", status.workers);

    let out = cluster.dir.path().join("stats");
    fetch(&cluster, job_id, &out);
    for (task_idx, shard) in (1..=4).map(|day| format!("day-{day}.csv")).enumerate() {
        // What the script must have found, computed here from the shard.
        let text = std::fs::read_to_string(examples().join("process/shards").join(&shard)).unwrap();
        let mut expected: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split(',').collect();
            expected.entry(fields[1]).or_default().push(fields[2].parse().unwrap());
        }
        let stats = std::fs::read(out.join(format!("task-{task_idx:06}-stats.json"))).unwrap();
        let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
        assert_eq!((stats["task"].as_u64(), stats["shard"].as_str()), (Some(task_idx as u64), Some(shard.as_str())));
        for (sensor, values) in &expected {
            let got = &stats["sensors"][sensor];
            assert_eq!(got["n"].as_u64(), Some(values.len() as u64), "{shard} {sensor}");
            let max = values.iter().copied().fold(f64::MIN, f64::max);
            assert_eq!(got["max"].as_f64(), Some(max), "{shard} {sensor}");
            let mean = values.iter().sum::<f64>() / values.len() as f64;
            assert!((got["mean"].as_f64().unwrap() - mean).abs() < 1e-5, "{shard} {sensor}");
        }
        let stdout = std::fs::read_to_string(out.join(format!("task-{task_idx:06}-stdout"))).unwrap();
        assert_eq!(stdout, format!("{shard}: 750 readings from 3 sensors\n"));
    }
}

/// Processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(marker) && !text.contains("cargo") {
            found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn commands_cannot_read_the_workers_key_reach_the_network_or_outgrow_their_limits() {
    if !sandbox_ready() {
        return;
    }
    let cluster = Cluster::start_full(1, &[], &["--process", "--memory-gib", "0.5"]).await;
    let dir = cluster.dir.path();
    let key = dir.join("worker-0").join(iog_host::KEY_FILE_NAME);
    assert!(key.is_file(), "the worker keeps its key at {}", key.display());
    let coordinator = format!("echo hello > /dev/tcp/127.0.0.1/{}", cluster.port);
    // With cgroups the kernel stops the task at its cap; by rlimits, the
    // allocation fails inside it.
    let out_of_memory = match iog_exec::ProcessExecutor::new().unwrap().memory_bound() {
        iog_exec::MemoryBound::Rlimit => "MemoryError",
        _ => "more than its 256 MiB of memory and was killed",
    };
    let cases = [
        (write_job(dir, "key", "cat", &[key.to_str().unwrap()], 1, ""), "No such file or directory"),
        (write_job(dir, "net", "bash", &["-c", &coordinator], 1, ""), "exited with code 1"),
        (
            write_job(dir, "memory", "python3", &["-c", "x = b'a' * (512 << 20)"], 1, "requires = [\"python3\"]"),
            out_of_memory,
        ),
        (write_job(dir, "spin", "bash", &["-c", "while :; do :; done"], 1, "cpu_s = 1"), "its 1 s of CPU time"),
        (write_job(dir, "missing", "no-such-program", &[], 1, ""), "was not found in the sandbox"),
    ];
    for (file, words) in cases {
        let (job_id, status) = run_to_end(&cluster, &file).await;
        assert_eq!(status.state, JobState::Failed, "{}: {status:?}", file.display());
        let tasks = cluster.client.tasks(job_id).await.unwrap();
        let error = tasks[0].last_error.clone().unwrap_or_default();
        assert!(error.contains(words), "{}: {error}", file.display());
    }

    // A cancelled job's command is killed with everything it started.
    let marker = "7777.31";
    let script = format!("sleep {marker} & (sleep {marker} &); sleep {marker}");
    let file = write_job(dir, "sleeper", "bash", &["-c", &script], 1, "timeout_ms = 600000");
    let job_id = submit(&cluster, &file);
    let deadline = Instant::now() + Duration::from_secs(30);
    while processes_with(&format!("sleep {marker}")).len() < 3 {
        assert!(Instant::now() < deadline, "the sleepers never started\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cancelled = cluster.cli(&["job", "cancel", &job_id.to_string()]);
    assert!(cancelled.status.success(), "{}", String::from_utf8_lossy(&cancelled.stderr));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_with(&format!("sleep {marker}")).is_empty() {
        assert!(Instant::now() < deadline, "left behind: {:?}", processes_with(marker));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The same worker, still online, runs a command that behaves, with a
    // script of the job's own at /in.
    std::fs::write(dir.join("hello.sh"), "#!/bin/sh\necho \"hello from task $IOG_TASK_INDEX\" > greeting.txt\n")
        .unwrap();
    let file = write_job(dir, "ok", "/in/hello.sh", &[], 2, "files = [\"hello.sh\"]");
    let (job_id, status) = run_to_end(&cluster, &file).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    let out = dir.join("ok-result");
    fetch(&cluster, job_id, &out);
    assert_eq!(std::fs::read_to_string(out.join("task-000001-greeting.txt")).unwrap(), "hello from task 1\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_job_waits_for_a_worker_that_offers_what_it_requires() {
    if !sandbox_ready() {
        return;
    }
    let cluster = Cluster::start_full(1, &[], &["--process", "--memory-gib", "0.5"]).await;
    let file = write_job(cluster.dir.path(), "needs", "fortran-model", &[], 1, "requires = [\"fortran-model\"]");
    let job_id = submit(&cluster, &file);
    let status = cluster.wait_job(job_id, Duration::from_secs(30), |s| s.waiting_reason.is_some()).await;
    let reason = status.waiting_reason.unwrap();
    assert!(reason.contains("running process and fortran-model"), "{reason}");
    assert!(reason.contains("[executors.process]"), "{reason}");
    // What the worker offers, as the market shows it.
    let workers = cluster.client.workers().await.unwrap();
    let software: Vec<&str> = workers[0].offer.as_ref().unwrap().software.iter().map(|s| s.name.as_str()).collect();
    assert!(software.contains(&"process") && software.contains(&"python3"), "{software:?}");
    // And as the market finds it.
    let found = cluster.cli(&["market", "search", "runs=python3 runs=process"]);
    let table = String::from_utf8_lossy(&found.stdout);
    assert!(found.status.success() && table.contains("1 device groups match"), "{table}");
    assert!(table.contains("process, python3"), "the runs column: {table}");
    let none = cluster.cli(&["market", "search", "runs=fortran-model"]);
    assert!(String::from_utf8_lossy(&none.stdout).contains("0 device groups match"));
}

fn blender_ready() -> bool {
    let found = Command::new("blender").arg("--version").output().is_ok_and(|out| out.status.success());
    if !found && std::env::var_os("IOG_REQUIRE_BLENDER").is_some() {
        panic!("IOG_REQUIRE_BLENDER is set but `blender --version` does not run");
    }
    if !found {
        eprintln!("skipping: Blender is not installed (Debian: apt-get install blender)");
    }
    found
}

/// Runs Blender here, outside iog, as its own users would.
fn blender(args: &[&str]) {
    let out = Command::new("blender").args(args).output().unwrap();
    assert!(out.status.success(), "blender {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn four_frames_of_a_blender_scene_render_across_two_workers_as_on_one_machine() {
    if !sandbox_ready() || !blender_ready() {
        return;
    }
    let cluster = Cluster::start_full(2, &[], &["--process", "--memory-gib", "1.5"]).await;
    let dir = cluster.dir.path();
    // A tiny scene built by Blender's own Python.
    let scene = dir.join("cube.blend");
    let make = examples().join("blender/make_scene.py");
    blender(&["--background", "--factory-startup", "--python", make.to_str().unwrap(), "--", scene.to_str().unwrap()]);
    let job = dir.join("frames.toml");
    std::fs::write(
        &job,
        "[job]\nname = \"cube\"\nworkload = \"blender\"\n\n[blender]\nscene = \"cube.blend\"\nframe_start = 1\n\
         frame_end = 4\n",
    )
    .unwrap();
    let (job_id, status) = run_to_end(&cluster, &job).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    assert_eq!(status.workers.len(), 2, "both workers rendered: {:?}", status.workers);
    let out = dir.join("frames");
    fetch(&cluster, job_id, &out);

    // The same frames rendered on this machine in one go.
    let local = dir.join("local");
    let pattern = local.join("frame-#####");
    blender(&[
        "--background",
        scene.to_str().unwrap(),
        "--render-output",
        pattern.to_str().unwrap(),
        "--render-format",
        "PNG",
        "--use-extension",
        "1",
        "--render-anim",
    ]);
    let mut frames = Vec::new();
    for frame in 1..=4u32 {
        let name = iog_workloads::blender::frame_file_name(frame);
        let network = std::fs::read(out.join(&name)).unwrap();
        let here = std::fs::read(local.join(&name)).unwrap();
        // Pixels alike byte for byte; only Blender's time stamps differ.
        assert_eq!(
            iog_workloads::process::png_without_text(&network).unwrap(),
            iog_workloads::process::png_without_text(&here).unwrap(),
            "frame {frame}"
        );
        frames.push(network);
    }
    // The cube turns: no two frames are alike.
    for (i, frame) in frames.iter().enumerate() {
        assert!(!frames[..i].contains(frame), "frame {} repeats an earlier one", i + 1);
    }
}

/// A tiny image (a static busybox, and one variable in its config) in the
/// worker's own podman store under `data_dir`, as if pulled for an earlier
/// job, or `None` where podman cannot hold one.
fn busybox_image(data_dir: &Path) -> Option<&'static str> {
    const IMAGE: &str = "localhost/iog-test-busybox:1";
    let required = std::env::var_os("IOG_REQUIRE_CONTAINER").is_some();
    let skip = |why: String| {
        assert!(!required, "IOG_REQUIRE_CONTAINER is set but {why}");
        eprintln!("skipping: {why}");
        None
    };
    if iog_worker::detect_podman().is_none() {
        return skip("podman is not installed or cannot list images (Debian: podman)".to_owned());
    }
    let store = ["--root", &format!("{}/podman/storage", data_dir.display())]
        .into_iter()
        .map(str::to_owned)
        .chain(["--runroot".to_owned(), format!("{}/podman/run", data_dir.display())])
        .collect::<Vec<String>>();
    let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|path| Path::new(path).is_file()) else {
        return skip("busybox is not installed (Debian: busybox-static)".to_owned());
    };
    let rootfs = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(rootfs.path().join("bin")).unwrap();
    std::fs::copy(busybox, rootfs.path().join("bin/busybox")).unwrap();
    for tool in ["sh", "ls", "cat", "echo"] {
        std::os::unix::fs::symlink("busybox", rootfs.path().join("bin").join(tool)).unwrap();
    }
    let tar = rootfs.path().with_extension("tar");
    let packed = Command::new("tar")
        .args(["-C", rootfs.path().to_str().unwrap(), "-cf", tar.to_str().unwrap(), "."])
        .status()
        .unwrap();
    assert!(packed.success());
    let imported = Command::new("podman")
        .args(&store)
        .args(["import", "--change", "ENV=PATH=/bin", "--change", "ENV=FROM_IMAGE=yes", tar.to_str().unwrap(), IMAGE])
        .output()
        .unwrap();
    std::fs::remove_file(&tar).unwrap();
    if !imported.status.success() {
        return skip(format!("podman import failed: {}", String::from_utf8_lossy(&imported.stderr)));
    }
    Some(IMAGE)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_process_job_runs_in_its_container_image_on_a_worker_that_offers_containers() {
    if !sandbox_ready() {
        return;
    }
    if iog_worker::detect_podman().is_none() {
        assert!(
            std::env::var_os("IOG_REQUIRE_CONTAINER").is_none(),
            "IOG_REQUIRE_CONTAINER is set but podman does not work"
        );
        eprintln!("skipping: podman is not installed or cannot list images (Debian: podman)");
        return;
    }
    let cluster = Cluster::start_full(1, &[], &["--process", "--memory-gib", "0.5"]).await;
    let Some(image) = busybox_image(&cluster.dir.path().join("worker-0")) else { return };
    let workers = cluster.client.workers().await.unwrap();
    let offer = workers[0].offer.as_ref().unwrap();
    let container = offer.software.iter().find(|s| s.name == "container").expect("containers offered");
    assert!(container.version.starts_with("podman "), "{container:?}");

    let dir = cluster.dir.path();
    std::fs::write(dir.join("a.txt"), "alpha").unwrap();
    let script = "echo \"$FROM_IMAGE $IOG_TASK_INDEX\"; ls /; cat /in/a.txt > copy.txt";
    let extra = format!("image = {image:?}\nfiles = [\"a.txt\"]");
    let file = write_job(dir, "boxed", "sh", &["-c", script], 1, &extra);
    let (job_id, status) = run_to_end(&cluster, &file).await;
    assert_eq!(status.state, JobState::Done, "{status:?}\n{}", cluster.logs());
    let out = dir.join("boxed-result");
    fetch(&cluster, job_id, &out);
    assert_eq!(std::fs::read_to_string(out.join("task-000000-copy.txt")).unwrap(), "alpha");
    // The image's variable, and its file system (no /usr of the worker's).
    let stdout = std::fs::read_to_string(out.join("task-000000-stdout")).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["yes 0", "bin", "dev", "in", "out", "proc", "tmp"], "{stdout}");
}
