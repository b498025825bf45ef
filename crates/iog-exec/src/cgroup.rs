//! A cgroup per process task, where this machine lets the worker make one:
//! it caps the memory of the task's processes together (resident memory,
//! not address space, so CUDA's large reservations work) and how many
//! processes it may have (a fork bomb stops at the cap), and it lists them
//! all, so every one is killed when the task ends.
//!
//! cgroup v2 (the unified hierarchy at `/sys/fs/cgroup`) is used when this
//! process's cgroup lets it make children with the `memory` and `pids`
//! controllers; otherwise cgroup v1's `memory` and `pids` hierarchies when
//! they are mounted and writable; otherwise none, and the executor falls
//! back to rlimits.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Most processes (and threads) one task may have at once.
pub const TASK_PIDS_MAX: u64 = 4_096;

/// Where task cgroups are made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cgroups {
    /// Children of this folder of the unified hierarchy.
    V2 { parent: PathBuf },
    /// Children of these folders of the v1 `memory` and `pids` hierarchies.
    V1 { memory: PathBuf, pids: PathBuf },
}

/// Numbers task cgroups' names within this process.
static NEXT: AtomicU64 = AtomicU64::new(0);

impl Cgroups {
    /// What this machine allows, found by making (and removing) a trial
    /// cgroup; `None` where no cgroup can be made.
    pub fn detect() -> Option<Cgroups> {
        let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
        let candidates = [v2_parent(&own), v1_parents(&own)];
        candidates.into_iter().flatten().find(|cgroups| {
            let Ok(trial) = cgroups.make(u64::MAX, 1) else { return false };
            drop(trial);
            true
        })
    }

    /// A new cgroup for one task, capped at `memory_bytes` and
    /// `pids_max`.
    pub fn make(&self, memory_bytes: u64, pids_max: u64) -> std::io::Result<TaskCgroup> {
        // The clock too: a worker restarted with the same pid (as in a
        // container) meets no cgroup its last run left behind.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let name = format!("iog-task-{}-{nanos}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let memory_value = if memory_bytes == u64::MAX { "max".to_owned() } else { memory_bytes.to_string() };
        let mut task = TaskCgroup { dirs: Vec::new(), events: None, v2: false };
        match self {
            Cgroups::V2 { parent } => {
                let dir = parent.join(&name);
                std::fs::create_dir(&dir)?;
                task.dirs.push(dir.clone());
                task.v2 = true;
                std::fs::write(dir.join("memory.max"), &memory_value)?;
                // No swap: the cap is the memory the task really has.
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
                std::fs::write(dir.join("pids.max"), pids_max.to_string())?;
                task.events = Some(dir.join("memory.events"));
            }
            Cgroups::V1 { memory, pids } => {
                let memory_dir = memory.join(&name);
                std::fs::create_dir(&memory_dir)?;
                task.dirs.push(memory_dir.clone());
                let limit = if memory_bytes == u64::MAX { "-1".to_owned() } else { memory_bytes.to_string() };
                std::fs::write(memory_dir.join("memory.limit_in_bytes"), &limit)?;
                let _ = std::fs::write(memory_dir.join("memory.memsw.limit_in_bytes"), &limit);
                let pids_dir = pids.join(&name);
                std::fs::create_dir(&pids_dir)?;
                task.dirs.push(pids_dir.clone());
                std::fs::write(pids_dir.join("pids.max"), pids_max.to_string())?;
                task.events = Some(memory_dir.join("memory.oom_control"));
            }
        }
        Ok(task)
    }
}

/// The unified hierarchy's folder this process may make children in.
fn v2_parent(own: &str) -> Option<Cgroups> {
    let path = own.lines().find_map(|line| line.strip_prefix("0::"))?;
    let root = Path::new("/sys/fs/cgroup");
    std::fs::metadata(root.join("cgroup.controllers")).ok()?;
    let parent = root.join(path.trim_start_matches('/'));
    let enabled = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
    let has = |controller: &str| enabled.split_whitespace().any(|c| c == controller);
    if !(has("memory") && has("pids")) {
        // Turning them on fails where this cgroup holds processes itself
        // (the "no internal processes" rule); then v2 is not for us.
        std::fs::write(parent.join("cgroup.subtree_control"), "+memory +pids").ok()?;
    }
    Some(Cgroups::V2 { parent })
}

/// The v1 `memory` and `pids` folders of this process.
fn v1_parents(own: &str) -> Option<Cgroups> {
    let mut memory = None;
    let mut pids = None;
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        for controller in controllers.split(',') {
            let dir = Path::new("/sys/fs/cgroup").join(controller).join(path.trim_start_matches('/'));
            match controller {
                "memory" => memory = Some(dir),
                "pids" => pids = Some(dir),
                _ => {}
            }
        }
    }
    Some(Cgroups::V1 { memory: memory?, pids: pids? })
}

/// One task's cgroup: made before its process starts, removed (with any
/// process left in it killed) when dropped.
#[derive(Debug)]
pub struct TaskCgroup {
    dirs: Vec<PathBuf>,
    /// Where the kernel counts OOM kills.
    events: Option<PathBuf>,
    v2: bool,
}

impl TaskCgroup {
    /// The `cgroup.procs` files a process writes its pid to, to join.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|dir| dir.join("cgroup.procs")).collect()
    }

    /// Whether the kernel killed a process of the task for its memory.
    pub fn oom_killed(&self) -> bool {
        let Some(events) = &self.events else { return false };
        let text = std::fs::read_to_string(events).unwrap_or_default();
        text.lines()
            .filter_map(|line| line.split_once(' '))
            .any(|(key, value)| key == "oom_kill" && value.trim().parse::<u64>().is_ok_and(|n| n > 0))
    }

    /// Every process still in the cgroup.
    fn members(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for dir in &self.dirs {
            let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            pids.extend(text.lines().filter_map(|line| line.trim().parse::<i32>().ok()));
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Kills every process left in the cgroup.
    pub fn kill_all(&self) {
        if self.v2
            && let Some(dir) = self.dirs.first()
            && std::fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.kill"))
                .and_then(|mut f| f.write_all(b"1"))
                .is_ok()
        {
            return;
        }
        let members = self.members();
        if !members.is_empty() {
            // A pid gone meanwhile is no error worth a word.
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(members.iter().map(i32::to_string))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

impl Drop for TaskCgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        for dir in &self.dirs {
            while std::fs::remove_dir(dir).is_err() && dir.exists() && Instant::now() < deadline {
                self.kill_all();
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// The exit status of [`JOIN_SCRIPT`] when it could not join a cgroup.
pub const JOIN_FAILED: i32 = 125;

/// The shell script that joins a task's cgroups and then runs the task:
/// `sh -c JOIN_SCRIPT iog-join <n> <cgroup.procs>… <program> <args>…`.
pub const JOIN_SCRIPT: &str =
    r#"n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n - 1)); done; exec "$@""#;
