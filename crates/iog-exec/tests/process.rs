//! The process sandbox (bubblewrap) against commands that misbehave: each
//! is stopped or refused with an error that says what happened, and the
//! machine is left as it was.
//!
//! Needs `bwrap` (Debian: bubblewrap) and `prlimit` (util-linux). Where
//! they are missing these tests say so and pass, unless
//! `IOG_REQUIRE_SANDBOX` is set, as `.ci/run` sets it, which installs them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use iog_exec::{MemoryBound, ProcessError, ProcessExecutor, ProcessLimits, ProcessRun, ProcessTask};

fn executor() -> Option<ProcessExecutor> {
    match ProcessExecutor::new() {
        Ok(executor) => Some(executor),
        Err(err) if std::env::var_os("IOG_REQUIRE_SANDBOX").is_none() => {
            eprintln!("skipping: {err}");
            None
        }
        Err(err) => panic!("IOG_REQUIRE_SANDBOX is set but {err}"),
    }
}

fn limits() -> ProcessLimits {
    ProcessLimits { memory_bytes: 512 << 20, cpu_s: 30, wall_ms: 20_000, output_bytes: 1 << 20 }
}

fn run(
    executor: &ProcessExecutor,
    program: &str,
    args: &[&str],
    inputs: &[(String, Vec<u8>)],
    limits: &ProcessLimits,
    cancel: Option<Arc<AtomicBool>>,
) -> Result<ProcessRun, ProcessError> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let env = vec![("GREETING".to_owned(), "hello".to_owned())];
    let task = ProcessTask {
        program,
        args: &args,
        env: &env,
        inputs,
        task_idx: 2,
        n_tasks: 3,
        gpus: &[],
        network: false,
        root: None,
        cancel,
    };
    let dir = tempfile::tempdir().unwrap();
    executor.run(&task, limits, dir.path())
}

fn bash(executor: &ProcessExecutor, script: &str, limits: &ProcessLimits) -> Result<ProcessRun, ProcessError> {
    run(executor, "bash", &["-c", script], &[], limits, None)
}

#[test]
fn a_command_reads_its_inputs_and_writes_its_outputs() {
    let Some(executor) = executor() else { return };
    let inputs = vec![("a.txt".to_owned(), b"alpha".to_vec())];
    let script = "cat /in/a.txt > /out/b.txt && mkdir /out/d && echo -n \"$GREETING $IOG_TASK_INDEX/$IOG_N_TASKS [$CUDA_VISIBLE_DEVICES]\" > /out/d/env.txt && echo done && pwd";
    let run = run(&executor, "bash", &["-c", script], &inputs, &limits(), None).unwrap();
    assert_eq!(run.output.entries["out/b.txt"], b"alpha");
    assert_eq!(run.output.entries["out/d/env.txt"], b"hello 2/3 []");
    assert_eq!(run.output.stdout(), b"done\n/out\n");
    // Folders a task locks are read all the same.
    let run = bash(&executor, "mkdir /out/locked && echo hidden > /out/locked/f && chmod 000 /out/locked", &limits());
    assert_eq!(run.unwrap().output.entries["out/locked/f"], b"hidden\n");
    // /in is read-only.
    let err = bash(&executor, "echo x > /in/new.txt", &limits()).unwrap_err();
    assert!(err.to_string().contains("Read-only file system"), "{err}");
}

#[test]
fn a_command_cannot_read_the_workers_files_nor_reach_the_network() {
    let Some(executor) = executor() else { return };
    // A worker's data dir with its key, outside the task's folder.
    let data_dir = tempfile::tempdir().unwrap();
    let key = data_dir.path().join("identity.key");
    std::fs::write(&key, b"secret").unwrap();
    let err = bash(&executor, &format!("cat {}", key.display()), &limits()).unwrap_err();
    assert!(err.to_string().contains("No such file or directory"), "{err}");
    for hidden in ["/root", "/home", "/var", "/etc/passwd", "/etc/shadow"] {
        let run = bash(&executor, &format!("test -e {hidden} && echo -n seen || echo -n hidden"), &limits()).unwrap();
        assert_eq!(run.output.stdout(), b"hidden", "{hidden} is visible");
    }
    // A listener on this machine's loopback is out of reach.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let err = bash(&executor, &format!("echo x > /dev/tcp/127.0.0.1/{port}"), &limits()).unwrap_err();
    assert!(matches!(err, ProcessError::Exit { .. }), "{err}");
    listener.set_nonblocking(true).unwrap();
    assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock, "it connected");
}

#[test]
fn limits_stop_memory_hogs_spinners_sleepers_and_floods() {
    let Some(executor) = executor() else { return };
    let small = ProcessLimits { memory_bytes: 64 << 20, ..limits() };
    let hog = "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo ${#x}";
    // Where cgroups are, the task's memory together is capped and the
    // kernel stops it; by rlimits, each process's allocations fail.
    if executor.memory_bound() != MemoryBound::Rlimit {
        let err = bash(&executor, hog, &small).unwrap_err();
        assert!(matches!(err, ProcessError::Memory { memory_bytes, .. } if memory_bytes == 64 << 20), "{err}");
        assert!(err.to_string().contains("more than its 64 MiB of memory"), "{err}");
    }
    let rlimited = executor.clone().without_cgroups();
    let err = bash(&rlimited, hog, &small).unwrap_err();
    assert!(err.to_string().contains("cannot allocate"), "{err}");

    let started = Instant::now();
    let err = bash(&executor, "while :; do :; done", &ProcessLimits { cpu_s: 1, ..limits() }).unwrap_err();
    assert!(matches!(err, ProcessError::CpuTime { cpu_s: 1, .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());

    let err = run(&executor, "sleep", &["30"], &[], &ProcessLimits { wall_ms: 300, ..limits() }, None).unwrap_err();
    assert!(matches!(err, ProcessError::WallClock { wall_ms: 300, .. }), "{err}");

    let err = run(&executor, "yes", &[], &[], &limits(), None).unwrap_err();
    assert!(matches!(err, ProcessError::OutputTooLarge { max_bytes } if max_bytes == 1 << 20), "{err}");
    let err = bash(&executor, "head -c 5000000 /dev/zero > /out/big.bin", &limits()).unwrap_err();
    assert!(matches!(err, ProcessError::OutputTooLarge { .. }), "{err}");

    let err = run(&executor, "no-such-program", &[], &[], &limits(), None).unwrap_err();
    assert!(matches!(err, ProcessError::NotFound { .. }), "{err}");
    let err = bash(&executor, "echo oops >&2; exit 7", &limits()).unwrap_err();
    assert_eq!(err.to_string(), "the process exited with code 7; its standard error ends: oops");
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

#[test]
fn a_cancelled_task_leaves_no_process_behind() {
    let Some(executor) = executor() else { return };
    let marker = "7777.25";
    let cancel = Arc::new(AtomicBool::new(false));
    let flag = cancel.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        flag.store(true, Ordering::Relaxed);
    });
    let script = format!("sleep {marker} & (sleep {marker} &) ; sleep {marker}");
    let started = Instant::now();
    let err = run(&executor, "bash", &["-c", &script], &[], &limits(), Some(cancel)).unwrap_err();
    setter.join().unwrap();
    assert!(matches!(err, ProcessError::Cancelled), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // The sandbox's processes die with it; give the kernel a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !processes_with(marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(processes_with(marker), Vec::<String>::new());
}

#[test]
fn a_command_runs_in_a_container_images_file_system_instead_of_the_hosts() {
    let Some(executor) = executor() else { return };
    let Some(busybox) =
        ["/bin/busybox", "/usr/bin/busybox"].into_iter().find(|path| std::path::Path::new(path).is_file())
    else {
        assert!(std::env::var_os("IOG_REQUIRE_SANDBOX").is_none(), "IOG_REQUIRE_SANDBOX is set but busybox is missing");
        eprintln!("skipping: busybox (Debian: busybox-static) is not installed");
        return;
    };
    // An image's file system, unpacked: a static busybox and its links.
    let image = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(image.path().join("bin")).unwrap();
    std::fs::create_dir_all(image.path().join("etc")).unwrap();
    std::fs::copy(busybox, image.path().join("bin/busybox")).unwrap();
    for tool in ["sh", "ls", "cat"] {
        std::os::unix::fs::symlink("busybox", image.path().join("bin").join(tool)).unwrap();
    }
    std::fs::write(image.path().join("etc/os-release"), "NAME=tiny\n").unwrap();
    std::os::unix::fs::symlink("bin", image.path().join("sbin")).unwrap();
    let inputs = vec![("a.txt".to_owned(), b"alpha".to_vec())];
    // Only the image's folders, and the sandbox's own: no /usr of the host.
    let args = vec!["-c".to_owned(), "ls /; cat /etc/os-release /in/a.txt".to_owned()];
    let task = ProcessTask {
        program: "/bin/sh",
        args: &args,
        env: &[("PATH".to_owned(), "/bin".to_owned())],
        inputs: &inputs,
        task_idx: 0,
        n_tasks: 1,
        gpus: &[],
        network: false,
        root: Some(image.path()),
        cancel: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let run = executor.run(&task, &limits(), dir.path()).unwrap();
    let listing = String::from_utf8(run.output.stdout().to_vec()).unwrap();
    let names: Vec<&str> = listing.lines().collect();
    assert_eq!(names[..names.len() - 2], ["bin", "dev", "etc", "in", "out", "proc", "sbin", "tmp"], "{listing}");
    assert_eq!(names[names.len() - 2..], ["NAME=tiny", "alpha"], "{listing}");
}

#[test]
fn a_fork_bomb_stops_at_the_tasks_process_cap_and_leaves_nothing_behind() {
    let Some(executor) = executor() else { return };
    if executor.memory_bound() == MemoryBound::Rlimit {
        assert!(
            std::env::var_os("IOG_REQUIRE_CGROUPS").is_none(),
            "IOG_REQUIRE_CGROUPS is set but no cgroup can be made"
        );
        eprintln!("skipping: no cgroup can be made here, so tasks have no process cap");
        return;
    }
    let executor = executor.with_pids_max(32);
    let marker = "7777.41";
    let script = format!(
        "import os, time\nfor i in range(100):\n    if os.fork() == 0:\n        time.sleep({marker})\n        os._exit(0)\n"
    );
    let args = ["-c", script.as_str()];
    let err = run(&executor, "python3", &args, &[], &limits(), None).unwrap_err();
    assert!(err.to_string().contains("Resource temporarily unavailable"), "{err}");
    // The 31 children it made are gone with it.
    let deadline = Instant::now() + Duration::from_secs(3);
    while !processes_with(marker).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(processes_with(marker), Vec::<String>::new());
}

#[test]
fn a_task_is_never_root_on_the_host_and_cannot_undo_its_read_only_binds() {
    let Some(executor) = executor() else { return };
    let run = bash(&executor, "id -u; cat /proc/self/status | grep CapEff", &limits()).unwrap();
    let stdout = String::from_utf8(run.output.stdout().to_vec()).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_ne!(lines[0], "0", "the task runs as root: {stdout}");
    assert!(lines[1].ends_with("0000000000000000"), "the task holds capabilities: {stdout}");
    // What a root task could do, and this one cannot.
    let before = std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap();
    let err = bash(&executor, "echo 11 > /proc/sys/vm/swappiness", &limits()).unwrap_err();
    assert!(matches!(err, ProcessError::Exit { .. }), "{err}");
    assert_eq!(std::fs::read_to_string("/proc/sys/vm/swappiness").unwrap(), before);
    let inputs = vec![("a.txt".to_owned(), b"alpha".to_vec())];
    let err = run_script(&executor, "mount -o remount,bind,rw /in && echo x > /in/a.txt", &inputs).unwrap_err();
    assert!(matches!(err, ProcessError::Exit { .. }), "{err}");
}

fn run_script(
    executor: &ProcessExecutor,
    script: &str,
    inputs: &[(String, Vec<u8>)],
) -> Result<ProcessRun, ProcessError> {
    run(executor, "bash", &["-c", script], inputs, &limits(), None)
}
