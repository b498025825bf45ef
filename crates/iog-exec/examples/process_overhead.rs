//! What the process sandbox costs per task: a command run N times under
//! bubblewrap (make the work folder, start the sandbox, wait, collect
//! `/out`), against the same command started directly. Commands: `true`
//! (with a cgroup per task where one can be made, and by rlimits only),
//! and `python3 -c pass` where python3 is installed; with a `.blend` file
//! as the second argument, also one Blender frame of it (N/20 times).
//!
//! cargo run --release -p iog-exec --no-default-features --example process_overhead [N] [scene.blend]

use std::path::Path;
use std::time::{Duration, Instant};

use iog_exec::{ProcessExecutor, ProcessLimits, ProcessTask};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Runs `program args` n times in the sandbox, then n times directly
/// (`direct_args`, which may name files where the sandbox has `/in`).
fn measure(
    executor: &ProcessExecutor,
    n: usize,
    program: &str,
    args: &[String],
    inputs: &[(String, Vec<u8>)],
    direct_args: &[String],
) {
    let limits = ProcessLimits { memory_bytes: 2 << 30, cpu_s: 600, wall_ms: 600_000, output_bytes: 64 << 20 };
    let task = ProcessTask {
        program,
        args,
        env: &[],
        inputs,
        task_idx: 0,
        n_tasks: 1,
        gpus: &[],
        network: false,
        root: None,
        cancel: None,
    };
    let mut sandboxed = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let began = Instant::now();
        executor.run(&task, &limits, dir.path()).unwrap();
        sandboxed.push(began.elapsed());
    }
    let total = started.elapsed();
    let mut direct = Vec::with_capacity(n);
    for _ in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let began = Instant::now();
        let status = std::process::Command::new(program)
            .args(direct_args)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        direct.push(began.elapsed());
    }
    sandboxed.sort();
    direct.sort();
    println!(
        "{program} {}: {n} in the sandbox, {:.1} tasks/s; sandboxed p50 {:.1} ms, p99 {:.1} ms; started directly \
         p50 {:.1} ms, p99 {:.1} ms",
        args.join(" ").chars().take(40).collect::<String>(),
        n as f64 / total.as_secs_f64(),
        ms(percentile(&sandboxed, 0.5)),
        ms(percentile(&sandboxed, 0.99)),
        ms(percentile(&direct, 0.5)),
        ms(percentile(&direct, 0.99)),
    );
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let executor = ProcessExecutor::new().expect("bubblewrap runs here");
    println!("memory bounded by {}", executor.memory_bound());
    measure(&executor, n, "true", &[], &[], &[]);
    let rlimited = executor.clone().without_cgroups();
    println!("memory bounded by {}", rlimited.memory_bound());
    measure(&rlimited, n, "true", &[], &[], &[]);
    if Path::new("/usr/bin/python3").exists() {
        let args = vec!["-c".to_owned(), "pass".to_owned()];
        measure(&executor, n, "/usr/bin/python3", &args, &[], &args);
    }
    if let Some(scene) = std::env::args().nth(2) {
        let bytes = std::fs::read(&scene).expect("read the scene");
        let args = iog_workloads::blender::blender_args("scene.blend", 1, None, None);
        let mut direct = args.clone();
        direct[1] = scene.clone();
        let out = direct.iter().position(|arg| arg == "/out/frame-#####").unwrap();
        direct[out] = "frame-#####".to_owned();
        measure(&executor, (n / 20).max(1), "blender", &args, &[("scene.blend".to_owned(), bytes)], &direct);
    }
}
