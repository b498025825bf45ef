//! The process executor: a command the job names, run under bubblewrap
//! with a read-only system, its files at `/in`, an empty `/out`, no
//! network unless the owner allows it, and none of the worker's files.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use iog_workloads::ProcessLimits;
use iog_workloads::{BUNDLE_STDOUT, Bundle};

use crate::cgroup::{Cgroups, TASK_PIDS_MAX, TaskCgroup};
use crate::out::{OutError, collect_out, dir_bytes_over, tail};

/// How often a running process is looked at: whether it ended, was
/// cancelled, ran past its wall clock or wrote past its output cap.
pub const PROCESS_POLL: Duration = Duration::from_millis(10);
/// Polls between looks at how much a process has written to `/out`.
const OUT_CHECK_POLLS: u32 = 10;

/// Parts of the host's `/etc` a process sees (read-only): what dynamic
/// linking, TLS, time zones and fonts need, and nothing about the owner.
const ETC_SHARED: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/localtime",
    "/etc/fonts",
    "/etc/mime.types",
];
/// Also shared when the owner lets tasks use the network.
const ETC_NETWORK: &[&str] = &["/etc/resolv.conf", "/etc/hosts", "/etc/nsswitch.conf", "/etc/gai.conf"];
/// Top-level system folders, bound read-only (or recreated as the links
/// they are on merged-/usr systems).
const SYSTEM_DIRS: &[&str] = &["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/opt"];

/// One task for a command.
#[derive(Debug, Clone)]
pub struct ProcessTask<'a> {
    /// The program, found on the sandbox's PATH (`/usr/bin:/bin`) or given
    /// as a path inside it (`/in/run.sh`).
    pub program: &'a str,
    pub args: &'a [String],
    /// Its environment, besides `IOG_TASK_INDEX`, `IOG_N_TASKS`, `PATH`,
    /// `HOME` and `CUDA_VISIBLE_DEVICES`.
    pub env: &'a [(String, String)],
    /// Files it finds in `/in`, by name.
    pub inputs: &'a [(String, Vec<u8>)],
    pub task_idx: u32,
    pub n_tasks: u32,
    /// The GPUs it may use, by index: their device nodes are passed in and
    /// `CUDA_VISIBLE_DEVICES` names them; empty hides every GPU.
    pub gpus: &'a [u32],
    /// Whether it may use the network (the owner's choice, not the job's).
    pub network: bool,
    /// A container image's unpacked file system to run in instead of this
    /// machine's `/usr` and `/etc` (read-only, as they are).
    pub root: Option<&'a Path>,
    /// Set to stop the run: its processes are killed within a poll.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// What a run that ended well produced.
#[derive(Debug, Clone)]
pub struct ProcessRun {
    /// Its files in `/out` (as `out/<path>`) and its standard output.
    pub output: Bundle,
    /// How long it ran.
    pub elapsed: Duration,
}

/// Why a process did not run to a good end. Each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(
        "bubblewrap (`bwrap`), which sandboxes process tasks, cannot run here: {0}; install it (Debian: \
         apt-get install bubblewrap) or turn executors.process off"
    )]
    NoSandbox(String),
    #[error("input file name {name:?} is not allowed: use 1 to 255 bytes, no `/`, not `.` or `..`")]
    BadInputName { name: String },
    #[error(
        "the program {program:?} was not found in the sandbox (its PATH is /usr/local/bin:/usr/bin:/bin, or the \
         image's; a file of the job is at /in/<name>)"
    )]
    NotFound { program: String },
    #[error("the process exited with code {code}{}", quote(stderr_tail))]
    Exit { code: i32, stderr_tail: String },
    #[error(
        "the process used its {cpu_s} s of CPU time and was killed; give the job more CPU time (up to the \
         worker's limit) or split the work{}",
        quote(stderr_tail)
    )]
    CpuTime { cpu_s: u64, stderr_tail: String },
    #[error(
        "the task used more than its {} MiB of memory and was killed; give the job more memory (memory_mib, up to \
         the worker's limit) or use less{}",
        memory_bytes >> 20,
        quote(stderr_tail)
    )]
    Memory { memory_bytes: u64, stderr_tail: String },
    #[error("the process was killed by signal {signal}{}", quote(stderr_tail))]
    Signal { signal: i32, stderr_tail: String },
    #[error("the process ran past its wall-clock limit of {wall_ms} ms and was killed{}", quote(stderr_tail))]
    WallClock { wall_ms: u64, stderr_tail: String },
    #[error("the process wrote more than {max_bytes} bytes of output (files in /out and standard output)")]
    OutputTooLarge { max_bytes: u64 },
    #[error("the process left {found} in /out, which holds only regular files and directories")]
    OddOutput { found: String },
    #[error("the run was cancelled (its lease ended or the worker is stopping)")]
    Cancelled,
    #[error("preparing, starting or reading the task failed: {0}")]
    Io(#[from] std::io::Error),
}

impl From<OutError> for ProcessError {
    fn from(err: OutError) -> ProcessError {
        match err {
            OutError::TooLarge { max_bytes } => ProcessError::OutputTooLarge { max_bytes },
            OutError::Odd { found } => ProcessError::OddOutput { found },
            OutError::Io(err) => ProcessError::Io(err),
        }
    }
}

fn quote(stderr_tail: &str) -> String {
    let tail = stderr_tail.trim();
    if tail.is_empty() { String::new() } else { format!("; its standard error ends: {tail}") }
}

/// Top-level folders of a container image the sandbox replaces with its own.
const IMAGE_SKIPPED: &[&str] = &["proc", "dev", "tmp", "in", "out", "sys", "run"];

/// Binds `from` at `to` read-only, or recreates it there when it is a
/// symbolic link (`/bin -> usr/bin`); a missing one is left out.
fn bind_entry(command: &mut Command, from: &Path, to: &Path) {
    match std::fs::symlink_metadata(from) {
        Ok(meta) if meta.file_type().is_symlink() => {
            if let Ok(target) = std::fs::read_link(from) {
                command.arg("--symlink").arg(target).arg(to);
            }
        }
        Ok(_) => {
            command.arg("--ro-bind").arg(from).arg(to);
        }
        Err(_) => {}
    }
}

/// Runs commands in a bubblewrap sandbox, one task at a time per call.
#[derive(Debug, Clone)]
pub struct ProcessExecutor {
    bwrap: PathBuf,
    prlimit: PathBuf,
    /// When this process is root: `setpriv`, which starts every task as
    /// [`SANDBOX_UID`] with no capabilities. A task run by root inside
    /// bubblewrap would be root on the host (it could remount its
    /// read-only binds or write the host's /proc/sys).
    setpriv: Option<PathBuf>,
    /// Where each task gets a cgroup capping its memory and processes;
    /// `None`: rlimits only (address space per process).
    cgroups: Option<Cgroups>,
    /// Most processes one task may have, where cgroups are.
    pids_max: u64,
}

/// How a process executor bounds a task's memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryBound {
    /// The task's processes together, by a cgroup v2 (`memory.max`), which
    /// also caps how many processes it may have (`pids.max`).
    CgroupV2,
    /// The same, by cgroup v1's `memory` and `pids` controllers.
    CgroupV1,
    /// Each process's address space (RLIMIT_AS), where no cgroup can be made.
    Rlimit,
}

impl std::fmt::Display for MemoryBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MemoryBound::CgroupV2 => "cgroup-v2",
            MemoryBound::CgroupV1 => "cgroup-v1",
            MemoryBound::Rlimit => "rlimit",
        })
    }
}

/// The user and group a task runs as when the worker is root: `nobody`.
pub const SANDBOX_UID: u32 = 65_534;

/// Whether this process runs as root (its `/proc/self` is owned by its
/// effective user).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0)
}

/// Exit status bubblewrap reports when it could not start the program.
const BWRAP_EXEC_FAILED: i32 = 1;
/// SIGXCPU (the CPU-time limit) and SIGXFSZ (the file-size limit) on Linux.
const SIGXCPU: i32 = 24;
const SIGXFSZ: i32 = 25;

impl ProcessExecutor {
    /// Finds `bwrap` and `prlimit` and checks that a sandbox can be made
    /// here (user namespaces allowed, or root).
    pub fn new() -> Result<ProcessExecutor, ProcessError> {
        let find = |name: &str| {
            std::env::var_os("PATH")
                .into_iter()
                .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
                .map(|dir| dir.join(name))
                .find(|candidate| candidate.is_file())
                .ok_or_else(|| ProcessError::NoSandbox(format!("`{name}` is not on PATH")))
        };
        let setpriv = match running_as_root() {
            true => Some(find("setpriv").map_err(|_| {
                ProcessError::NoSandbox(
                    "the worker runs as root, and `setpriv` (util-linux), which starts each task as an \
                     unprivileged user, is not on PATH"
                        .to_owned(),
                )
            })?),
            false => None,
        };
        let executor = ProcessExecutor {
            bwrap: find("bwrap")?,
            prlimit: find("prlimit")?,
            setpriv,
            cgroups: Cgroups::detect(),
            pids_max: TASK_PIDS_MAX,
        };
        // The sandbox as a task gets it: as the unprivileged user, where
        // this process is root.
        let mut probe = executor.launcher(None);
        let probe = probe
            .arg(&executor.bwrap)
            .args(["--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|err| ProcessError::NoSandbox(err.to_string()))?;
        if !probe.status.success() {
            return Err(ProcessError::NoSandbox(String::from_utf8_lossy(&probe.stderr).trim().to_owned()));
        }
        Ok(executor)
    }

    /// How this executor bounds a task's memory.
    pub fn memory_bound(&self) -> MemoryBound {
        match self.cgroups {
            Some(Cgroups::V2 { .. }) => MemoryBound::CgroupV2,
            Some(Cgroups::V1 { .. }) => MemoryBound::CgroupV1,
            None => MemoryBound::Rlimit,
        }
    }

    /// This executor with at most `pids_max` processes per task (where
    /// cgroups are; the default is [`TASK_PIDS_MAX`]).
    pub fn with_pids_max(mut self, pids_max: u64) -> ProcessExecutor {
        self.pids_max = pids_max;
        self
    }

    /// This executor bounding memory by rlimits only, as where no cgroup
    /// can be made.
    pub fn without_cgroups(mut self) -> ProcessExecutor {
        self.cgroups = None;
        self
    }

    /// The start of a task's command line, up to prlimit's options: a `sh`
    /// that joins the task's cgroup (as root, when the worker is), then
    /// `setpriv` down to [`SANDBOX_UID`] with no capabilities (when the
    /// worker is root), then `prlimit`.
    fn launcher(&self, cgroup: Option<&TaskCgroup>) -> Command {
        let mut argv: Vec<std::ffi::OsString> = Vec::new();
        if let Some(cgroup) = cgroup {
            let files = cgroup.procs_files();
            argv.extend(["/bin/sh", "-c", crate::cgroup::JOIN_SCRIPT, "iog-join"].map(Into::into));
            argv.push(files.len().to_string().into());
            argv.extend(files.into_iter().map(Into::into));
        }
        if let Some(setpriv) = &self.setpriv {
            argv.push(setpriv.into());
            argv.extend(
                [
                    format!("--reuid={SANDBOX_UID}"),
                    format!("--regid={SANDBOX_UID}"),
                    "--clear-groups".to_owned(),
                    "--inh-caps=-all".to_owned(),
                    "--bounding-set=-all".to_owned(),
                    "--no-new-privs".to_owned(),
                ]
                .map(Into::into),
            );
        }
        argv.push(self.prlimit.clone().into());
        let mut command = Command::new(&argv[0]);
        command.args(&argv[1..]);
        command
    }

    /// The command line that runs `task` in `work_dir` (`in/`, `out/`).
    fn command(
        &self,
        task: &ProcessTask<'_>,
        limits: &ProcessLimits,
        work_dir: &Path,
        cgroup: Option<&TaskCgroup>,
    ) -> Command {
        // Every process of the task starts inside its cgroup.
        let mut command = self.launcher(cgroup);
        // No cgroup: each process's address space is what bounds it, except
        // with GPUs, whose drivers reserve far more address space than
        // memory (CUDA fails to start under such a cap).
        if cgroup.is_none() && task.gpus.is_empty() {
            command.arg(format!("--as={}", limits.memory_bytes));
        }
        command
            // SIGXCPU at the soft limit (which the error names), SIGKILL a
            // second later for a process that ignores it.
            .arg(format!("--cpu={}:{}", limits.cpu_s, limits.cpu_s.saturating_add(1)))
            .arg(format!("--fsize={}", limits.output_bytes))
            .arg("--core=0")
            .arg("--")
            .arg(&self.bwrap);
        command.args(["--unshare-all", "--die-with-parent", "--new-session", "--clearenv", "--cap-drop", "ALL"]);
        if task.network {
            command.arg("--share-net");
        }
        match task.root {
            None => {
                for dir in SYSTEM_DIRS {
                    bind_entry(&mut command, Path::new(dir), Path::new(dir));
                }
                let etc = ETC_SHARED.iter().chain(if task.network { ETC_NETWORK } else { &[] });
                for path in etc {
                    command.args(["--ro-bind-try", path, path]);
                }
            }
            Some(root) => {
                // Each top-level entry of the image, read-only, except the
                // ones the sandbox makes its own.
                let entries = std::fs::read_dir(root).into_iter().flatten().flatten();
                for entry in entries {
                    let name = entry.file_name();
                    if !IMAGE_SKIPPED.iter().any(|skipped| name == *skipped) {
                        bind_entry(&mut command, &entry.path(), &Path::new("/").join(&name));
                    }
                }
            }
        }
        command.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
        let mut visible = Vec::new();
        for gpu in task.gpus {
            let node = format!("/dev/nvidia{gpu}");
            if Path::new(&node).exists() {
                command.args(["--dev-bind", &node, &node]);
            }
            visible.push(gpu.to_string());
        }
        if !task.gpus.is_empty() {
            for node in ["/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools", "/dev/nvidia-modeset"] {
                command.args(["--dev-bind-try", node, node]);
            }
        }
        command.arg("--ro-bind").arg(work_dir.join("in")).arg("/in");
        command.arg("--bind").arg(work_dir.join("out")).arg("/out");
        command.args([
            "--chdir",
            "/out",
            "--setenv",
            "PATH",
            "/usr/local/bin:/usr/bin:/bin",
            "--setenv",
            "HOME",
            "/tmp",
        ]);
        command.args(["--setenv", "IOG_TASK_INDEX", &task.task_idx.to_string()]);
        command.args(["--setenv", "IOG_N_TASKS", &task.n_tasks.to_string()]);
        // No GPU asked for: none is visible, whatever the driver would pick.
        command.args(["--setenv", "CUDA_VISIBLE_DEVICES", &visible.join(",")]);
        for (key, value) in task.env {
            command.args(["--setenv", key, value]);
        }
        command.arg("--").arg(task.program).args(task.args);
        command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        command
    }

    /// Runs `task` under `limits` in `work_dir` (empty or absent; it gets
    /// `in/` and `out/`, and is left for the caller to remove). Blocks its
    /// thread until the process group has ended.
    pub fn run(
        &self,
        task: &ProcessTask<'_>,
        limits: &ProcessLimits,
        work_dir: &Path,
    ) -> Result<ProcessRun, ProcessError> {
        let (in_dir, out_dir) = (work_dir.join("in"), work_dir.join("out"));
        std::fs::create_dir_all(&in_dir)?;
        std::fs::create_dir_all(&out_dir)?;
        if self.setpriv.is_some() {
            // The unprivileged user reaches the folder, reads `in/` and
            // writes `out/`, and nothing else of the worker's.
            use std::os::unix::fs::PermissionsExt;
            unreachable_by_sandbox(work_dir)?;
            std::fs::set_permissions(work_dir, std::fs::Permissions::from_mode(0o711))?;
            std::fs::set_permissions(&in_dir, std::fs::Permissions::from_mode(0o755))?;
            std::os::unix::fs::chown(&out_dir, Some(SANDBOX_UID), Some(SANDBOX_UID))?;
        }
        for (name, bytes) in task.inputs {
            let bad =
                name.is_empty() || name.len() > 255 || name.contains(['/', '\\', '\0']) || name == "." || name == "..";
            if bad {
                return Err(ProcessError::BadInputName { name: name.clone() });
            }
            let path = in_dir.join(name);
            std::fs::write(&path, bytes)?;
            // Readable and runnable: `/in/run.sh` with its `#!` line works.
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o555))?;
        }
        let cgroup = match &self.cgroups {
            Some(cgroups) => Some(cgroups.make(limits.memory_bytes, self.pids_max)?),
            None => None,
        };
        let started = Instant::now();
        let mut child = self.command(task, limits, work_dir, cgroup.as_ref()).spawn()?;
        let stdout = Capture::start(child.stdout.take().expect("piped"), limits.output_bytes as usize, true);
        let stderr = Capture::start(child.stderr.take().expect("piped"), 64 << 10, false);
        let deadline = started + Duration::from_millis(limits.wall_ms);
        let mut polls = 0u32;
        let stopped = loop {
            if let Some(status) = child.try_wait()? {
                break Ok(status);
            }
            if task.cancel.as_ref().is_some_and(|cancel| cancel.load(Ordering::Relaxed)) {
                break Err(kill(&mut child, ProcessError::Cancelled));
            }
            if Instant::now() >= deadline {
                let stderr_tail = tail(&stderr.so_far());
                break Err(kill(&mut child, ProcessError::WallClock { wall_ms: limits.wall_ms, stderr_tail }));
            }
            polls = polls.wrapping_add(1);
            let over = stdout.overflowed()
                || (polls.is_multiple_of(OUT_CHECK_POLLS)
                    && dir_bytes_over(&out_dir, limits.output_bytes.saturating_sub(stdout.len() as u64)));
            if over {
                break Err(kill(&mut child, ProcessError::OutputTooLarge { max_bytes: limits.output_bytes }));
            }
            std::thread::sleep(PROCESS_POLL);
        };
        let elapsed = started.elapsed();
        // Whatever the task started and left behind goes with it.
        let oom_killed = cgroup.as_ref().is_some_and(TaskCgroup::oom_killed);
        if let Some(cgroup) = &cgroup {
            cgroup.kill_all();
        }
        let (stdout, stdout_overflowed) = stdout.finish();
        let stderr_tail = tail(&stderr.finish().0);
        drop(cgroup);
        let status = stopped?;
        if oom_killed && !status.success() {
            return Err(ProcessError::Memory { memory_bytes: limits.memory_bytes, stderr_tail });
        }
        if stdout_overflowed {
            return Err(ProcessError::OutputTooLarge { max_bytes: limits.output_bytes });
        }
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(0), _) => {}
            // bwrap's own failure to start the program: say so plainly.
            (Some(BWRAP_EXEC_FAILED), _) if stderr_tail.contains("bwrap: execvp") => {
                return Err(ProcessError::NotFound { program: task.program.to_owned() });
            }
            // The launcher's own failure to put the task in its cgroup.
            (Some(crate::cgroup::JOIN_FAILED), _) if stderr_tail.contains("cgroup.procs") => {
                return Err(ProcessError::Io(std::io::Error::other(format!(
                    "the task could not join its cgroup: {stderr_tail}"
                ))));
            }
            (Some(code), _) => {
                // bwrap passes a signal death on as 128 + signal.
                return Err(match code - 128 {
                    SIGXCPU => ProcessError::CpuTime { cpu_s: limits.cpu_s, stderr_tail },
                    SIGXFSZ => ProcessError::OutputTooLarge { max_bytes: limits.output_bytes },
                    signal if code > 128 => ProcessError::Signal { signal, stderr_tail },
                    _ => ProcessError::Exit { code, stderr_tail },
                });
            }
            (None, Some(SIGXCPU)) => return Err(ProcessError::CpuTime { cpu_s: limits.cpu_s, stderr_tail }),
            (None, Some(SIGXFSZ)) => return Err(ProcessError::OutputTooLarge { max_bytes: limits.output_bytes }),
            (None, signal) => return Err(ProcessError::Signal { signal: signal.unwrap_or(0), stderr_tail }),
        }
        let mut output = Bundle::default();
        if !stdout.is_empty() {
            output.entries.insert(BUNDLE_STDOUT.to_owned(), stdout.clone());
        }
        let mut total = stdout.len() as u64;
        // A task may have locked its own folders (`chmod 000`); they are
        // the worker's to read and remove all the same.
        open_up(&out_dir);
        collect_out(&out_dir, &out_dir, &mut output, &mut total, limits.output_bytes)?;
        Ok(ProcessRun { output, elapsed })
    }
}

/// Gives this process's user read (and, for folders, write and pass)
/// permission on everything under `dir`, without following links, so a
/// task's output is read and removed whatever modes it left.
fn open_up(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::symlink_metadata(dir) else { return };
    if !meta.is_dir() {
        return;
    }
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(meta.permissions().mode() | 0o700));
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(meta) = entry.file_type() else { continue };
        if meta.is_dir() {
            open_up(&entry.path());
        } else if meta.is_file()
            && let Ok(file_meta) = entry.metadata()
        {
            let mode = file_meta.permissions().mode() | 0o600;
            let _ = std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode));
        }
    }
}

/// Fails when a folder above `work_dir` keeps [`SANDBOX_UID`] out (it
/// must be able to pass through each), saying which and what to do.
fn unreachable_by_sandbox(work_dir: &Path) -> Result<(), ProcessError> {
    use std::os::unix::fs::MetadataExt;
    let absolute = std::path::absolute(work_dir)?;
    for dir in absolute.ancestors().skip(1) {
        let meta = std::fs::metadata(dir)?;
        if meta.mode() & 0o001 == 0 && meta.uid() != SANDBOX_UID {
            return Err(ProcessError::Io(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                format!(
                    "the task folder {} is below {}, which the sandbox's user (uid {SANDBOX_UID}) cannot pass \
                     through (mode {:o}); put task folders under /tmp or another folder others may pass through",
                    work_dir.display(),
                    dir.display(),
                    meta.mode() & 0o777
                ),
            )));
        }
    }
    Ok(())
}

/// Kills the sandbox (bubblewrap dies, and with it, by `--die-with-parent`
/// and its PID namespace, every process the task started) and waits for it.
fn kill(child: &mut Child, why: ProcessError) -> ProcessError {
    let _ = child.kill();
    let _ = child.wait();
    why
}

/// A reader thread keeping up to `max` bytes of a pipe: all of them, or
/// (for standard error) the last ones.
struct Capture {
    bytes: Arc<Mutex<Vec<u8>>>,
    overflowed: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
}

impl Capture {
    fn start(mut pipe: impl Read + Send + 'static, max: usize, keep_head: bool) -> Capture {
        let bytes = Arc::new(Mutex::new(Vec::new()));
        let overflowed = Arc::new(AtomicBool::new(false));
        let (into, flag) = (bytes.clone(), overflowed.clone());
        let thread = std::thread::spawn(move || {
            let mut buffer = [0u8; 64 << 10];
            while let Ok(n) = pipe.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                let mut kept = into.lock().expect("capture lock");
                kept.extend_from_slice(&buffer[..n]);
                if kept.len() > max {
                    if keep_head {
                        kept.truncate(max);
                        flag.store(true, Ordering::Relaxed);
                    } else {
                        let excess = kept.len() - max;
                        kept.drain(..excess);
                    }
                }
            }
        });
        Capture { bytes, overflowed, thread }
    }

    fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    fn len(&self) -> usize {
        self.bytes.lock().expect("capture lock").len()
    }

    fn so_far(&self) -> Vec<u8> {
        self.bytes.lock().expect("capture lock").clone()
    }

    /// Waits for the pipe to close (the sandbox has ended) and returns
    /// what was kept.
    fn finish(self) -> (Vec<u8>, bool) {
        let _ = self.thread.join();
        let bytes = std::mem::take(&mut *self.bytes.lock().expect("capture lock"));
        (bytes, self.overflowed.load(Ordering::Relaxed))
    }
}
