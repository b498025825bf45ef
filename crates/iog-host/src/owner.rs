//! Whether the machine's owner is using it right now.
//!
//! An owner can lend a machine only while they are not using it themselves.
//! The worker polls [`OwnerWatch::check`] every second or so; when it answers
//! [`OwnerState::Busy`] the worker stops its tasks and tells the coordinator
//! why. This module only decides; the polling loop and what to stop belong to
//! the worker.
//!
//! Three signals exist, and an owner configures any of them in
//! [`OwnerPolicy`]: another process on an NVIDIA GPU, a file that exists, and
//! a shell command that exits 0. Everything here is synchronous: a check may
//! block for up to [`COMMAND_TIMEOUT`] while the busy command runs, so an async
//! caller should run it on a blocking thread.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

/// Longest time the busy command may run. A command that takes longer is
/// killed and counted as busy: a hung check must not let tasks run on a
/// machine the owner may be using, and the worker's poll must not stall.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(5);

/// Shortest time between two attempts to start NVML after one failed.
/// Starting NVML means loading the driver library, which is cheap when it
/// works but pointless to retry every second on a host without a driver; a
/// driver installed or loaded later is still picked up within a minute.
const NVML_RETRY: Duration = Duration::from_secs(60);

/// Most GPUs looked at. NVML reports what the driver sees, so this only
/// guards against a broken driver returning a nonsense count.
const GPUS_MAX: u32 = 64;

/// How often a running busy command is looked at. Most commands finish in a
/// few milliseconds, so a short step keeps the check fast without spinning.
const COMMAND_POLL: Duration = Duration::from_millis(10);

/// What counts as the owner using the machine. Every configured signal is
/// checked; any one busy means busy. The default configures no signal, so a
/// worker without an owner policy always runs tasks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct OwnerPolicy {
    /// Busy while another process (not this worker process or its children)
    /// runs on an NVIDIA GPU, per NVML (compute and graphics processes). On a
    /// host where NVML cannot start this signal is idle, and
    /// [`OwnerWatch::notes`] says why.
    #[serde(default)]
    pub gpu_busy: bool,
    /// Names of processes (as `/proc/<pid>/comm` gives them) whose use of a
    /// GPU does not count: a desktop whose screen runs on the NVIDIA card
    /// keeps its display server and compositor on the GPU all the time.
    /// Defaults to [`GPU_IGNORE_DEFAULT`]; setting it replaces that list.
    #[serde(default = "gpu_ignore_default")]
    pub gpu_ignore: Vec<String>,
    /// Busy while this file exists, so that an owner's script or a desktop
    /// toggle can pause lending by creating it. When the worker cannot tell
    /// whether the file exists, it counts as busy.
    #[serde(default)]
    pub busy_file: Option<PathBuf>,
    /// Busy while this shell command exits with status 0 (for example
    /// `test $(xprintidle) -lt 60000` or `pgrep -x steam`). It runs with
    /// `sh -c`, stdin null and output discarded, and is killed after
    /// [`COMMAND_TIMEOUT`]; a timeout counts as busy, and the reason says so.
    #[serde(default)]
    pub busy_command: Option<String>,
}

/// Display servers and compositors that hold a GPU context for as long as a
/// desktop runs; they do not mean the owner is gaming or computing.
pub const GPU_IGNORE_DEFAULT: [&str; 11] = [
    "Xorg",
    "Xwayland",
    "gnome-shell",
    "kwin_x11",
    "kwin_wayland",
    "plasmashell",
    "mutter",
    "sway",
    "cinnamon",
    "xfwm4",
    "compiz",
];

fn gpu_ignore_default() -> Vec<String> {
    GPU_IGNORE_DEFAULT.iter().map(|name| (*name).to_owned()).collect()
}

impl Default for OwnerPolicy {
    fn default() -> OwnerPolicy {
        OwnerPolicy { gpu_busy: false, gpu_ignore: gpu_ignore_default(), busy_file: None, busy_command: None }
    }
}

impl OwnerPolicy {
    /// Whether any signal is configured. Without one the owner never counts
    /// as busy, and the worker need not poll at all.
    pub fn is_active(&self) -> bool {
        self.gpu_busy || self.busy_file.is_some() || self.busy_command.is_some()
    }
}

/// The answer of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerState {
    /// No configured signal says the owner is using the machine, so tasks
    /// may run.
    Idle,
    /// The owner is using the machine. The text says which signal fired, in
    /// words for logs and the coordinator, for example `file /tmp/x exists`,
    /// ``command `pgrep -x steam` exited 0`` or
    /// `process 1234 (blender) uses GPU 0`.
    Busy(String),
}

impl OwnerState {
    /// Whether the owner is using the machine.
    pub fn is_busy(&self) -> bool {
        matches!(self, OwnerState::Busy(_))
    }
}

/// Watches the signals of one [`OwnerPolicy`].
///
/// It holds the policy and, when `gpu_busy` is set, an NVML handle started on
/// the first check. The handle is kept because starting NVML loads the driver
/// library, which is too slow to repeat every second. Things an operator
/// should hear about once, such as NVML being unavailable, are collected for
/// [`OwnerWatch::notes`] rather than repeated on every check.
pub struct OwnerWatch {
    policy: OwnerPolicy,
    nvml: Option<Nvml>,
    /// When NVML last failed to start; the next attempt waits `NVML_RETRY`.
    nvml_failed_at: Option<Instant>,
    /// How many times starting NVML was tried, so tests can see the pacing.
    nvml_attempts: u32,
    command_timeout: Duration,
    /// Keys of the notes already given, so a lasting condition is reported
    /// once instead of on every check.
    noted: HashSet<String>,
    notes: Vec<String>,
}

impl std::fmt::Debug for OwnerWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OwnerWatch")
            .field("policy", &self.policy)
            .field("nvml", &self.nvml.is_some())
            .field("nvml_failed_at", &self.nvml_failed_at)
            .finish_non_exhaustive()
    }
}

impl OwnerWatch {
    /// A watch for `policy`. Nothing is started yet: NVML is started on the
    /// first check that needs it, so creating a watch never fails or blocks.
    pub fn new(policy: OwnerPolicy) -> OwnerWatch {
        OwnerWatch::with_command_timeout(policy, COMMAND_TIMEOUT)
    }

    /// A watch whose busy command is killed after `command_timeout`. Only
    /// tests need a timeout other than [`COMMAND_TIMEOUT`].
    fn with_command_timeout(policy: OwnerPolicy, command_timeout: Duration) -> OwnerWatch {
        OwnerWatch {
            policy,
            nvml: None,
            nvml_failed_at: None,
            nvml_attempts: 0,
            command_timeout,
            noted: HashSet::new(),
            notes: Vec::new(),
        }
    }

    /// The policy this watch checks.
    pub fn policy(&self) -> &OwnerPolicy {
        &self.policy
    }

    /// Whether any signal is configured. An inactive watch always answers
    /// [`OwnerState::Idle`], so the worker may skip polling it.
    pub fn is_active(&self) -> bool {
        self.policy.is_active()
    }

    /// Whether the owner is using the machine now.
    ///
    /// The signals are looked at from cheapest to dearest (file, GPU,
    /// command) and the first busy one answers, so the command is not run
    /// while a cheaper signal already says busy. This may block for up to
    /// [`COMMAND_TIMEOUT`] while the busy command runs.
    pub fn check(&mut self) -> OwnerState {
        self.check_at(Instant::now())
    }

    /// The notes collected since the last call, such as why the GPU signal
    /// is ignored. Each lasting condition is noted once, so the worker can
    /// log whatever this returns without flooding its log.
    pub fn notes(&mut self) -> Vec<String> {
        std::mem::take(&mut self.notes)
    }

    /// [`OwnerWatch::check`] at a given time, so tests can step past the
    /// NVML retry pause without waiting a minute.
    fn check_at(&mut self, now: Instant) -> OwnerState {
        if let Some(path) = &self.policy.busy_file {
            match path.try_exists() {
                Ok(true) => return OwnerState::Busy(format!("file {} exists", path.display())),
                Ok(false) => {}
                // An unreadable parent dir hides the owner's switch; running
                // tasks on a machine the owner may have claimed would be worse
                // than pausing, and the reason tells the operator what to fix.
                Err(err) => {
                    return OwnerState::Busy(format!(
                        "cannot tell whether file {} exists ({err}); counted as busy",
                        path.display()
                    ));
                }
            }
        }
        if self.policy.gpu_busy
            && let Some(reason) = self.gpu_signal(now)
        {
            return OwnerState::Busy(reason);
        }
        if let Some(command) = self.policy.busy_command.clone() {
            return self.command_signal(&command);
        }
        OwnerState::Idle
    }

    /// The reason the GPU signal is busy, or `None` when it is idle or
    /// cannot be read (with a note saying why).
    fn gpu_signal(&mut self, now: Instant) -> Option<String> {
        let processes = {
            let nvml = self.nvml(now)?;
            let mut errors = Vec::new();
            let processes = gpu_processes(nvml, &mut errors);
            for (key, note) in errors {
                self.note_once(key, note);
            }
            processes
        };
        if processes.is_empty() {
            return None;
        }
        // Our pids are read after NVML answered, so every task NVML listed
        // is either still alive and found among ours, or has exited and is
        // dropped by `pid_visible` instead of being taken for the owner's.
        let ours = our_pids();
        let ignored = |pid: u32| process_name(pid).is_some_and(|name| self.policy.gpu_ignore.contains(&name));
        let live: Vec<(u32, u32)> =
            processes.into_iter().filter(|&(_, pid)| pid_visible(pid) && !ignored(pid)).collect();
        let (gpu_idx, pid) = foreign_gpu_process(&live, &ours)?;
        Some(match process_name(pid) {
            Some(name) => format!("process {pid} ({name}) uses GPU {gpu_idx}"),
            None => format!("process {pid} uses GPU {gpu_idx}"),
        })
    }

    /// The NVML handle, started now if it is not yet and the last failure is
    /// at least `NVML_RETRY` old.
    fn nvml(&mut self, now: Instant) -> Option<&Nvml> {
        if self.nvml.is_none() {
            if self.nvml_failed_at.is_some_and(|failed_at| now.saturating_duration_since(failed_at) < NVML_RETRY) {
                return None;
            }
            self.nvml_attempts += 1;
            match Nvml::init() {
                Ok(nvml) => {
                    if self.nvml_failed_at.take().is_some() {
                        self.noted.remove("nvml");
                        self.notes.push("nvml available now; gpu_busy in effect".to_owned());
                    }
                    self.nvml = Some(nvml);
                }
                Err(err) => {
                    self.nvml_failed_at = Some(now);
                    self.note_once("nvml".to_owned(), nvml_unavailable_note(&err));
                    return None;
                }
            }
        }
        self.nvml.as_ref()
    }

    /// Whether the busy command says busy.
    fn command_signal(&mut self, command: &str) -> OwnerState {
        match run_command(command, self.command_timeout) {
            CommandOutcome::Exited(status) if status.success() => {
                OwnerState::Busy(format!("command `{command}` exited 0"))
            }
            CommandOutcome::Exited(status) => {
                // 126 and 127 are the shell's "cannot run" and "not found":
                // the command can then never say busy, which the owner should
                // hear about instead of silently losing the signal.
                if matches!(status.code(), Some(126 | 127)) {
                    self.note_once(
                        format!("command-{}", status.code().unwrap_or_default()),
                        format!("busy command `{command}` could not run ({status}); it counts as idle until fixed"),
                    );
                }
                OwnerState::Idle
            }
            CommandOutcome::TimedOut => OwnerState::Busy(format!(
                "command `{command}` still running after {} ms; killed and counted as busy",
                self.command_timeout.as_millis()
            )),
            // Without a shell the signal cannot be read; as with an unreadable
            // busy file, pausing is safer for the owner than running.
            CommandOutcome::SpawnFailed(err) => {
                OwnerState::Busy(format!("command `{command}` could not be started ({err}); counted as busy"))
            }
        }
    }

    /// Adds `note` unless a note with the same key was already given.
    fn note_once(&mut self, key: String, note: String) {
        if self.noted.insert(key) {
            self.notes.push(note);
        }
    }
}

/// Why NVML could not start, and what that means for the GPU signal.
fn nvml_unavailable_note(err: &NvmlError) -> String {
    let why = match err {
        NvmlError::LibloadingError(err) => format!("libnvidia-ml.so not found ({err})"),
        NvmlError::DriverNotLoaded => "the NVIDIA driver is not loaded".to_owned(),
        NvmlError::NoPermission => "no permission to talk to the NVIDIA driver".to_owned(),
        err => err.to_string(),
    };
    format!("nvml unavailable: {why}; gpu_busy ignored (retrying every {} s)", NVML_RETRY.as_secs())
}

/// Every `(GPU index, pid)` NVML reports with a compute or graphics context.
/// Each GPU or query that failed adds a keyed note to `errors`. A failed query leaves
/// that GPU out: a lost or odd GPU should not stop lending on the others.
fn gpu_processes(nvml: &Nvml, errors: &mut Vec<(String, String)>) -> Vec<(u32, u32)> {
    let mut processes = Vec::new();
    let n_gpus = match nvml.device_count() {
        Ok(n) => n.min(GPUS_MAX),
        Err(err) => {
            errors.push(("nvml-count".to_owned(), format!("nvml: could not count GPUs ({err}); gpu_busy ignored")));
            return processes;
        }
    };
    for gpu_idx in 0..n_gpus {
        let gpu = match nvml.device_by_index(gpu_idx) {
            Ok(gpu) => gpu,
            Err(err) => {
                errors.push((
                    format!("nvml-open-{gpu_idx}"),
                    format!("nvml: could not open GPU {gpu_idx} ({err}); gpu_busy ignores it"),
                ));
                continue;
            }
        };
        let queries = [("compute", gpu.running_compute_processes()), ("graphics", gpu.running_graphics_processes())];
        for (kind, result) in queries {
            match result {
                Ok(infos) => processes.extend(infos.into_iter().map(|info| (gpu_idx, info.pid))),
                Err(err) => errors.push((
                    format!("nvml-{kind}-{gpu_idx}"),
                    format!("nvml: could not list {kind} processes on GPU {gpu_idx} ({err}); gpu_busy ignores them"),
                )),
            }
        }
    }
    processes
}

/// The first `(GPU index, pid)` in `processes` whose pid is not in `ours`.
/// Kept apart from NVML so the rule can be tested without a GPU.
pub fn foreign_gpu_process(processes: &[(u32, u32)], ours: &HashSet<u32>) -> Option<(u32, u32)> {
    processes.iter().copied().find(|(_, pid)| !ours.contains(pid))
}

/// This process and all its descendants: the worker's own tasks, which must
/// not count as the owner using the GPU. On hosts without `/proc` only this
/// process is known.
fn our_pids() -> HashSet<u32> {
    let me = std::process::id();
    if cfg!(target_os = "linux") { descendants(me, &proc_parents()) } else { HashSet::from([me]) }
}

/// `(pid, parent pid)` of every process `/proc` shows. Processes that exit
/// while the list is read are simply missing from it.
fn proc_parents() -> Vec<(u32, u32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            // Only the numeric entries are processes.
            entry.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(entry.path().join("stat")).ok()?;
            parse_stat(&stat)
        })
        .collect()
}

/// `(pid, parent pid)` from the text of `/proc/<pid>/stat`. The command name
/// in parentheses may itself hold spaces and parentheses, so the fields after
/// it are found from the last `)`.
fn parse_stat(stat: &str) -> Option<(u32, u32)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let pid = stat[..open].trim().parse().ok()?;
    let mut rest = stat.get(close + 1..)?.split_whitespace();
    let _state = rest.next()?;
    let ppid = rest.next()?.parse().ok()?;
    Some((pid, ppid))
}

/// `root` and every process descended from it, given each process's parent.
fn descendants(root: u32, parents: &[(u32, u32)]) -> HashSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for &(pid, ppid) in parents {
        children.entry(ppid).or_default().push(pid);
    }
    let mut found = HashSet::from([root]);
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        for &child in children.get(&pid).into_iter().flatten() {
            // The set also guards against a cycle from pid reuse mid-scan.
            if found.insert(child) {
                todo.push(child);
            }
        }
    }
    found
}

/// Whether `pid` exists as seen from here. NVML may still list a task that
/// has just exited, or list a process from another pid namespace; neither
/// can be told apart from our own tasks, so neither counts as the owner's.
/// Without `/proc` every pid is taken as visible.
fn pid_visible(pid: u32) -> bool {
    !cfg!(target_os = "linux") || std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// The short name of process `pid`, when `/proc` tells it.
fn process_name(pid: u32) -> Option<String> {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).ok()?;
    let comm = comm.trim();
    (!comm.is_empty()).then(|| comm.to_owned())
}

/// How a busy command ended.
#[derive(Debug)]
enum CommandOutcome {
    /// It exited, with this status.
    Exited(ExitStatus),
    /// It ran past the timeout and was killed.
    TimedOut,
    /// `sh` could not be started.
    SpawnFailed(std::io::Error),
}

/// Runs `command` with `sh -c`, stdin null and output discarded, and kills it
/// (with everything it started) once it runs past `timeout`.
fn run_command(command: &str, timeout: Duration) -> CommandOutcome {
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(command).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
    // Its own process group lets a timeout kill whatever the command started
    // too (`sleep 60; true` leaves `sleep` behind when only `sh` is killed).
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(err) => return CommandOutcome::SpawnFailed(err),
    };
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return CommandOutcome::Exited(status),
            Ok(None) => {}
            // The child cannot be waited on; treat it like one that hangs.
            Err(_) => break,
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        std::thread::sleep(COMMAND_POLL.min(deadline - now));
    }
    kill_command(&mut child);
    CommandOutcome::TimedOut
}

/// Kills a busy command that ran too long, and its process group. The group
/// is killed through the shell's `kill` because std can only signal the one
/// child; the child itself is then killed and reaped either way.
fn kill_command(child: &mut Child) {
    #[cfg(unix)]
    {
        let _ = Command::new("sh")
            .args(["-c", "kill -s KILL -- \"-$1\"", "sh"])
            .arg(child.id().to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_stat_reads_pid_and_parent() {
        let plain = "1234 (bash) S 1200 1234 1234 34816 1300 4194304 2000 0 0 0 1 2 0 0 20 0 1 0 100 0 0";
        assert_eq!(parse_stat(plain), Some((1234, 1200)));
        // A command name may hold spaces and parentheses of its own.
        let odd = "77 (my (odd) name) R 5 77 77 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 1 0 0";
        assert_eq!(parse_stat(odd), Some((77, 5)));
        let closing = "78 (a) b) ) S 9 78 78 0 -1 0";
        assert_eq!(parse_stat(closing), Some((78, 9)));
        // The kernel's threads have parent 0 or 2.
        assert_eq!(parse_stat("2 (kthreadd) S 0 0 0 0 -1 2129984 0 0"), Some((2, 0)));
    }

    #[test]
    fn parse_stat_refuses_broken_lines() {
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("12 (cut"), None);
        assert_eq!(parse_stat("12 (cut) S"), None);
        assert_eq!(parse_stat("x (name) S 1"), None);
        assert_eq!(parse_stat("12 (name) S notapid"), None);
    }

    #[test]
    fn descendants_follow_the_whole_tree() {
        let parents = [(1, 0), (10, 1), (11, 10), (12, 11), (13, 10), (20, 1), (21, 20), (30, 12)];
        assert_eq!(descendants(10, &parents), HashSet::from([10, 11, 12, 13, 30]));
        assert_eq!(descendants(20, &parents), HashSet::from([20, 21]));
        assert_eq!(descendants(99, &parents), HashSet::from([99]));
        // A cycle, which pid reuse during a scan could fake, still ends.
        assert_eq!(descendants(5, &[(5, 6), (6, 5)]), HashSet::from([5, 6]));
    }

    #[test]
    fn our_pids_hold_this_process_and_a_child() {
        let mut child = Command::new("sleep").arg("5").spawn().expect("sleep runs");
        let ours = our_pids();
        let child_pid = child.id();
        let _ = child.kill();
        let _ = child.wait();
        assert!(ours.contains(&std::process::id()));
        if cfg!(target_os = "linux") {
            assert!(ours.contains(&child_pid), "{ours:?} lacks {child_pid}");
            // pid 1 is never ours: the tests do not run as init.
            assert!(!ours.contains(&1) || std::process::id() == 1);
        }
    }

    #[test]
    fn foreign_gpu_process_skips_ours() {
        let ours = HashSet::from([100, 101, 102]);
        assert_eq!(foreign_gpu_process(&[], &ours), None);
        assert_eq!(foreign_gpu_process(&[(0, 100), (1, 101), (0, 102)], &ours), None);
        assert_eq!(foreign_gpu_process(&[(0, 100), (1, 555), (0, 666)], &ours), Some((1, 555)));
        assert_eq!(foreign_gpu_process(&[(3, 7)], &HashSet::new()), Some((3, 7)));
    }

    #[test]
    fn nvml_failure_is_noted_once_and_retried_after_a_pause() {
        if Nvml::init().is_ok() {
            // This host has a driver, so the unavailable branch cannot run.
            return;
        }
        let mut watch = OwnerWatch::new(OwnerPolicy { gpu_busy: true, ..OwnerPolicy::default() });
        let start = Instant::now();
        assert_eq!(watch.check_at(start), OwnerState::Idle);
        assert_eq!(watch.nvml_attempts, 1);
        let notes = watch.notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("nvml unavailable: "), "{notes:?}");
        assert!(notes[0].contains("gpu_busy ignored"), "{notes:?}");

        // Within the pause NVML is not tried again.
        assert_eq!(watch.check_at(start + Duration::from_secs(30)), OwnerState::Idle);
        assert_eq!(watch.nvml_attempts, 1);
        // After it, NVML is tried again, but the lasting failure is not
        // noted a second time.
        assert_eq!(watch.check_at(start + NVML_RETRY), OwnerState::Idle);
        assert_eq!(watch.nvml_attempts, 2);
        assert!(watch.notes().is_empty());
    }

    #[test]
    fn command_exit_status_decides() {
        let mut watch =
            OwnerWatch::new(OwnerPolicy { busy_command: Some("true".to_owned()), ..OwnerPolicy::default() });
        assert_eq!(watch.check(), OwnerState::Busy("command `true` exited 0".to_owned()));
        let mut watch =
            OwnerWatch::new(OwnerPolicy { busy_command: Some("false".to_owned()), ..OwnerPolicy::default() });
        assert_eq!(watch.check(), OwnerState::Idle);
        assert!(watch.notes().is_empty());
        // Stdin is null, so a command that reads it does not hang.
        let mut watch = OwnerWatch::with_command_timeout(
            OwnerPolicy { busy_command: Some("cat; exit 3".to_owned()), ..OwnerPolicy::default() },
            Duration::from_secs(2),
        );
        assert_eq!(watch.check(), OwnerState::Idle);
    }

    #[test]
    fn command_not_found_is_idle_with_one_note() {
        let policy =
            OwnerPolicy { busy_command: Some("no-such-command-iog-test".to_owned()), ..OwnerPolicy::default() };
        let mut watch = OwnerWatch::new(policy);
        assert_eq!(watch.check(), OwnerState::Idle);
        assert_eq!(watch.check(), OwnerState::Idle);
        let notes = watch.notes();
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].contains("could not run"), "{notes:?}");
    }

    #[test]
    fn hanging_command_is_killed_and_counts_as_busy() {
        let policy = OwnerPolicy { busy_command: Some("sleep 10".to_owned()), ..OwnerPolicy::default() };
        let mut watch = OwnerWatch::with_command_timeout(policy, Duration::from_millis(200));
        let started = Instant::now();
        let state = watch.check();
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
        match state {
            OwnerState::Busy(reason) => {
                assert!(reason.contains("still running after 200 ms"), "{reason}");
                assert!(reason.contains("counted as busy"), "{reason}");
            }
            OwnerState::Idle => panic!("a hanging command must count as busy"),
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn timeout_also_kills_what_the_command_started() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pid_file = dir.path().join("pid");
        let command = format!("sleep 30 & echo $! > '{}'; wait", pid_file.display());
        let policy = OwnerPolicy { busy_command: Some(command), ..OwnerPolicy::default() };
        let mut watch = OwnerWatch::with_command_timeout(policy, Duration::from_millis(300));
        assert!(watch.check().is_busy());
        let pid: u32 = std::fs::read_to_string(&pid_file).expect("pid written").trim().parse().expect("a pid");
        // The orphaned `sleep` is reaped by whoever adopts it; until then it
        // may linger as a zombie, which is dead all the same.
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
            let dead = match &stat {
                Err(_) => true,
                Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
            };
            if dead {
                break;
            }
            assert!(Instant::now() < deadline, "sleep {pid} survived the timeout: {stat:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn watch_can_move_to_another_thread() {
        fn is_send<T: Send>() {}
        is_send::<OwnerWatch>();
    }
}
