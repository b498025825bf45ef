//! What the process sandbox costs per task: a command run N times under
//! bubblewrap (make the work folder, start the sandbox, wait, collect
//! `/out`), against the same command started directly. Commands: `true`
//! (with a cgroup per task where one can be made, and by rlimits only),
//! and `python3 -c pass` where python3 is installed; with a `.blend` file
//! as the second argument, also one Blender frame of it (N/20 times).
//!
//! After the two `true` rows, the container path, where podman and
//! busybox are installed (and this runs as root, which `podman image
//! mount` needs): a busybox image imported into a podman store of its own
//! (setup, not measured), unpacked as the worker unpacks an image
//! (`podman image mount`, `cp -a` of its file system out, `podman image
//! unmount`, its ENV read; a few times), and `/bin/true` (busybox) run N
//! times with that file system as the task's root, by both executors.
//!
//! cargo run --release -p iog-exec --no-default-features --example process_overhead [N] [scene.blend]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use iog_exec::{ProcessExecutor, ProcessLimits, ProcessTask};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A task of `program args` with `inputs`, on this machine's file system,
/// no environment of its own, no GPU and no network.
fn task<'a>(program: &'a str, args: &'a [String], inputs: &'a [(String, Vec<u8>)]) -> ProcessTask<'a> {
    ProcessTask {
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
    }
}

/// Runs `task` n times in the sandbox, then its program n times directly
/// (with `direct_args`, which may name files where the sandbox has `/in`).
fn measure(executor: &ProcessExecutor, n: usize, task: &ProcessTask<'_>, direct_args: &[String]) {
    let limits = ProcessLimits { memory_bytes: 2 << 30, cpu_s: 600, wall_ms: 600_000, output_bytes: 64 << 20 };
    let mut sandboxed = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let began = Instant::now();
        executor.run(task, &limits, dir.path()).unwrap();
        sandboxed.push(began.elapsed());
    }
    let total = started.elapsed();
    let mut direct = Vec::with_capacity(n);
    for _ in 0..n {
        let dir = tempfile::tempdir().unwrap();
        let began = Instant::now();
        let status = Command::new(task.program)
            .args(direct_args)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        direct.push(began.elapsed());
    }
    sandboxed.sort();
    direct.sort();
    let what = format!("{} {}", task.program, task.args.join(" ").chars().take(40).collect::<String>());
    let root = if task.root.is_some() { " (in the image's root)" } else { "" };
    println!(
        "{}{root}: {n} in the sandbox, {:.1} tasks/s; sandboxed p50 {:.1} ms, p99 {:.1} ms; started directly \
         p50 {:.1} ms, p99 {:.1} ms",
        what.trim_end(),
        n as f64 / total.as_secs_f64(),
        ms(percentile(&sandboxed, 0.5)),
        ms(percentile(&sandboxed, 0.99)),
        ms(percentile(&direct, 0.5)),
        ms(percentile(&direct, 0.99)),
    );
}

/// Runs podman on the store `store` (its `--root` and `--runroot`) and
/// returns its standard output, trimmed.
fn podman(store: &[String], args: &[&str]) -> Result<String, String> {
    let output = Command::new("podman")
        .args(store)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("run podman: {err}"))?;
    if !output.status.success() {
        return Err(format!("podman {}: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The container path: a busybox image in a podman store of its own,
/// unpacked `UNPACKS` times as the worker does, then `/bin/true` run n
/// times in its root by each of `executors`. Says why and returns where
/// podman or busybox is missing.
fn containers(executors: &[&ProcessExecutor], n: usize) {
    const IMAGE: &str = "localhost/iog-bench-busybox:1";
    const UNPACKS: usize = 5;
    let version = match podman(&[], &["--version"]) {
        Ok(version) => version,
        Err(_) => return println!("container: skipped, podman is not installed (Debian: podman)"),
    };
    let Some(busybox) = ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|path| Path::new(path).is_file()) else {
        return println!("container: skipped, busybox is not installed (Debian: busybox-static)");
    };
    // The store and the unpacked file systems; the sandbox's user reaches
    // the latter through it (the worker's folder for process work is 0711
    // too).
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let store = [
        "--root".to_owned(),
        dir.path().join("podman/storage").display().to_string(),
        "--runroot".to_owned(),
        dir.path().join("podman/run").display().to_string(),
    ];
    // Setup, not measured: the image, imported from a tar of busybox.
    let tree = dir.path().join("tree");
    std::fs::create_dir_all(tree.join("bin")).unwrap();
    std::fs::copy(busybox, tree.join("bin/busybox")).unwrap();
    for tool in ["sh", "true"] {
        std::os::unix::fs::symlink("busybox", tree.join("bin").join(tool)).unwrap();
    }
    let tar = dir.path().join("tree.tar");
    let packed = Command::new("tar").arg("-C").arg(&tree).arg("-cf").arg(&tar).arg(".").status().unwrap();
    assert!(packed.success());
    let tar = tar.display().to_string();
    if let Err(err) = podman(&store, &["import", "--quiet", "--change", "ENV=PATH=/bin", &tar, IMAGE]) {
        return println!("container: skipped, {err}");
    }
    // What the worker does once per image: mount, copy out, unmount, read
    // its ENV.
    let mut unpacks = Vec::with_capacity(UNPACKS);
    let mut env = Vec::new();
    for i in 0..UNPACKS {
        let root = dir.path().join(format!("images/image-{i}"));
        std::fs::create_dir_all(root.parent().unwrap()).unwrap();
        let began = Instant::now();
        let mounted = match podman(&store, &["image", "mount", IMAGE]) {
            Ok(mounted) => mounted,
            Err(err) => return println!("container: skipped, {err} (mounting an image needs root)"),
        };
        let copied = Command::new("cp").arg("-a").arg(format!("{mounted}/.")).arg(&root).status().unwrap();
        podman(&store, &["image", "unmount", IMAGE]).unwrap();
        assert!(copied.success());
        let config =
            podman(&store, &["image", "inspect", "--format", "{{range .Config.Env}}{{println .}}{{end}}", IMAGE]);
        unpacks.push(began.elapsed());
        env = config
            .unwrap()
            .lines()
            .filter_map(|pair| pair.split_once('='))
            .filter(|(name, _)| !name.starts_with("IOG_"))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
    }
    let size = std::fs::metadata(tree.join("bin/busybox")).unwrap().len();
    unpacks.sort();
    println!(
        "{version}: unpacking a busybox image ({:.1} MB; mount, cp -a out, unmount, read ENV), {UNPACKS} times: \
         min {:.1} ms, median {:.1} ms, max {:.1} ms",
        size as f64 / 1e6,
        ms(unpacks[0]),
        ms(percentile(&unpacks, 0.5)),
        ms(unpacks[UNPACKS - 1]),
    );
    let root = dir.path().join("images/image-0");
    for executor in executors {
        println!("memory bounded by {}", executor.memory_bound());
        measure(executor, n, &ProcessTask { env: &env, root: Some(&root), ..task("/bin/true", &[], &[]) }, &[]);
    }
    let _ = podman(&store, &["rmi", IMAGE]);
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(200);
    let executor = ProcessExecutor::new().expect("bubblewrap runs here");
    println!("memory bounded by {}", executor.memory_bound());
    measure(&executor, n, &task("true", &[], &[]), &[]);
    let rlimited = executor.clone().without_cgroups();
    println!("memory bounded by {}", rlimited.memory_bound());
    measure(&rlimited, n, &task("true", &[], &[]), &[]);
    containers(&[&executor, &rlimited], n);
    if Path::new("/usr/bin/python3").exists() {
        let args = vec!["-c".to_owned(), "pass".to_owned()];
        measure(&executor, n, &task("/usr/bin/python3", &args, &[]), &args);
    }
    if let Some(scene) = std::env::args().nth(2) {
        let inputs = [("scene.blend".to_owned(), std::fs::read(&scene).expect("read the scene"))];
        let args = iog_workloads::blender::blender_args("scene.blend", 1, None, None);
        let mut direct = args.clone();
        direct[1] = scene.clone();
        let out = direct.iter().position(|arg| arg == "/out/frame-#####").unwrap();
        direct[out] = "frame-#####".to_owned();
        measure(&executor, (n / 20).max(1), &task("blender", &args, &inputs), &direct);
    }
}
