//! Executors for users' own code: a `wasm` task's module, fetched with its
//! files and run in the WebAssembly sandbox of `iog-exec`; a `process`
//! (or `blender`) task's command, run under bubblewrap.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iog_client::Client;
use iog_types::{BlobId, Device, DeviceKind};
use iog_workloads::{ProcessTaskInput, TaskRun, WasmTaskInput};

use crate::config::WorkerConfig;

/// Most bytes of modules and job files kept between tasks.
const FILE_CACHE_BYTES_MAX: usize = 512 << 20;

/// The executors this worker runs users' code in, and what they share:
/// compiled modules (inside the wasm executor) and fetched files.
pub(crate) struct Executors {
    caps: crate::config::Executors,
    /// Each task runs in a fresh folder under here, removed after.
    work_dir: PathBuf,
    #[cfg(feature = "wasm")]
    wasm: Option<Arc<iog_exec::WasmExecutor>>,
    process: Option<Arc<iog_exec::ProcessExecutor>>,
    /// The indices of this machine's NVIDIA GPUs, which a process task
    /// that asks for GPUs sees.
    gpus: Vec<u32>,
    /// Container images mounted for process tasks, by reference.
    images: Arc<Mutex<std::collections::HashMap<String, Arc<Image>>>>,
    files: Mutex<FileCache>,
}

#[derive(Default)]
struct FileCache {
    /// Most recently used first.
    entries: VecDeque<(BlobId, Arc<Vec<u8>>)>,
    bytes: usize,
}

impl FileCache {
    fn get(&mut self, blob: BlobId) -> Option<Arc<Vec<u8>>> {
        let at = self.entries.iter().position(|(id, _)| *id == blob)?;
        let entry = self.entries.remove(at).expect("the position exists");
        let bytes = entry.1.clone();
        self.entries.push_front(entry);
        Some(bytes)
    }

    fn put(&mut self, blob: BlobId, bytes: Arc<Vec<u8>>) {
        if bytes.len() > FILE_CACHE_BYTES_MAX || self.entries.iter().any(|(id, _)| *id == blob) {
            return;
        }
        self.bytes += bytes.len();
        self.entries.push_front((blob, bytes));
        while self.bytes > FILE_CACHE_BYTES_MAX {
            let (_, evicted) = self.entries.pop_back().expect("bytes are counted in entries");
            self.bytes -= evicted.len();
        }
    }
}

/// Sets its flag when dropped: a task whose lease is revoked is aborted,
/// which drops its future, which stops its module within a tick.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Executors {
    /// The executors `config` turns on, ready to run.
    pub(crate) fn new(config: &WorkerConfig, devices: &[Device]) -> anyhow::Result<Executors> {
        let work_dir = config.data_dir.join("work");
        if config.executors.wasm.is_some() || config.executors.process.is_some() {
            std::fs::create_dir_all(&work_dir)
                .map_err(|err| anyhow::anyhow!("create the work folder {}: {err}", work_dir.display()))?;
        }
        let process = match config.executors.process {
            Some(_) => Some(Arc::new(
                iog_exec::ProcessExecutor::new()
                    .map_err(|err| anyhow::anyhow!("start the process executor (executors.process is on): {err}"))?,
            )),
            None => None,
        };
        let gpus = devices
            .iter()
            .filter(|device| device.kind == DeviceKind::Gpu && device.source == "nvml")
            .filter_map(|device| device.name.strip_prefix("gpu")?.parse().ok())
            .collect();
        #[cfg(feature = "wasm")]
        let wasm = match config.executors.wasm {
            Some(_) => {
                let executor =
                    iog_exec::WasmExecutor::new().map_err(|err| anyhow::anyhow!("start the wasm executor: {err}"))?;
                Some(Arc::new(executor))
            }
            None => None,
        };
        Ok(Executors {
            caps: config.executors.clone(),
            work_dir,
            #[cfg(feature = "wasm")]
            wasm,
            process,
            gpus,
            images: Arc::default(),
            files: Mutex::default(),
        })
    }

    /// A blob the task reads, from the cache or fetched.
    async fn file(&self, client: &Client, blob: BlobId) -> Result<Arc<Vec<u8>>, String> {
        if let Some(bytes) = self.files.lock().expect("file cache lock").get(blob) {
            return Ok(bytes);
        }
        let bytes = crate::runner::with_retries(&format!("fetch job file {blob}"), || client.get_blob(blob)).await?;
        if BlobId::of(&bytes) != blob {
            return Err(format!("job file {blob} came back with other bytes"));
        }
        let bytes = Arc::new(bytes);
        self.files.lock().expect("file cache lock").put(blob, bytes.clone());
        Ok(bytes)
    }

    /// Runs a wasm task: its limits checked against the owner's caps, its
    /// module and files fetched, the module run in a fresh folder. The
    /// output is the bundle of what it wrote; its work units are the
    /// instructions it executed.
    pub(crate) async fn run_wasm(&self, client: &Client, task: WasmTaskInput) -> Result<TaskRun, String> {
        let Some(caps) = self.caps.wasm else {
            return Err("this worker does not run wasm tasks (its owner has not turned on executors.wasm)".to_owned());
        };
        if let Some(over) = task.limits.over(&caps) {
            return Err(over);
        }
        let module = self.file(client, task.module).await?;
        let mut inputs = Vec::with_capacity(task.files.len());
        for (name, blob) in &task.files {
            inputs.push((name.clone(), self.file(client, *blob).await?.to_vec()));
        }
        let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        self.run_blocking(task, module, inputs, cancel.0.clone()).await
    }

    /// How the process executor bounds a task's memory, when it runs.
    pub(crate) fn process_memory_bound(&self) -> Option<iog_exec::MemoryBound> {
        self.process.as_ref().map(|process| process.memory_bound())
    }

    /// Runs a process task: its limits checked against the owner's caps,
    /// the programs it requires checked against what this worker found,
    /// its files fetched, the command run under bubblewrap in a fresh
    /// folder. Its work units are the milliseconds it ran.
    pub(crate) async fn run_process(&self, client: &Client, task: ProcessTaskInput) -> Result<TaskRun, String> {
        let (Some(caps), Some(executor)) = (&self.caps.process, &self.process) else {
            return Err(
                "this worker does not run process tasks (its owner has not turned on executors.process)".to_owned()
            );
        };
        if let Some(over) = task.limits.over(&caps.limits) {
            return Err(over);
        }
        if let Some(missing) = task.requires.iter().find(|name| !caps.found.iter().any(|found| &found.name == *name)) {
            return Err(format!("the job requires {missing}, which this worker does not offer"));
        }
        let image = match &task.image {
            None => None,
            Some(_) if !caps.found.iter().any(|found| found.name == iog_workloads::CONTAINER_SOFTWARE) => {
                return Err("the job runs in a container image, and this worker does not offer containers".to_owned());
            }
            Some(reference) => {
                let (images, reference) = (self.images.clone(), reference.clone());
                Some(
                    tokio::task::spawn_blocking(move || Image::mounted(&images, &reference))
                        .await
                        .map_err(|err| format!("the image's thread failed: {err}"))??,
                )
            }
        };
        let gpus: Vec<u32> = self.gpus.iter().copied().take(task.gpus as usize).collect();
        if gpus.len() < task.gpus as usize {
            return Err(format!("the task asks for {} GPUs; this worker has {} it can pass in", task.gpus, gpus.len()));
        }
        let mut inputs = Vec::with_capacity(task.files.len());
        for (name, blob) in &task.files {
            inputs.push((name.clone(), self.file(client, *blob).await?.to_vec()));
        }
        let work = tempfile::Builder::new()
            .prefix("process-")
            .tempdir_in(&self.work_dir)
            .map_err(|err| format!("make a work folder in {}: {err}", self.work_dir.display()))?;
        let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        let flag = cancel.0.clone();
        let (executor, network) = (executor.clone(), caps.network);
        let run = tokio::task::spawn_blocking(move || {
            // The image's environment first, so the job's own wins.
            let env: Vec<(String, String)> =
                image.iter().flat_map(|image| image.env.iter().cloned()).chain(task.env.iter().cloned()).collect();
            let process_task = iog_exec::ProcessTask {
                program: &task.program,
                args: &task.args,
                env: &env,
                inputs: &inputs,
                task_idx: task.task_idx,
                n_tasks: task.n_tasks,
                gpus: &gpus,
                network,
                root: image.as_ref().map(|image| image.root.as_path()),
                cancel: Some(flag),
            };
            let run = executor.run(&process_task, &task.limits, work.path());
            drop(work);
            run.map(|mut run| {
                task.finish(&mut run.output);
                run
            })
        })
        .await
        .map_err(|err| format!("the process task's thread failed: {err}"))?;
        drop(cancel);
        let run = run.map_err(|err| err.to_string())?;
        Ok(TaskRun { output: run.output.to_tar(), work_units: run.elapsed.as_millis() as u64 })
    }

    #[cfg(feature = "wasm")]
    async fn run_blocking(
        &self,
        task: WasmTaskInput,
        module: Arc<Vec<u8>>,
        inputs: Vec<(String, Vec<u8>)>,
        cancel: Arc<AtomicBool>,
    ) -> Result<TaskRun, String> {
        if self.wasm.is_none() {
            return Err("this worker's wasm executor is not running".to_owned());
        }
        let work = tempfile::Builder::new()
            .prefix("wasm-")
            .tempdir_in(&self.work_dir)
            .map_err(|err| format!("make a work folder in {}: {err}", self.work_dir.display()))?;
        let executor = self.wasm.clone().expect("checked above");
        let run = tokio::task::spawn_blocking(move || {
            let wasm_task = iog_exec::WasmTask {
                module: &module,
                name: &task.module_name,
                args: &task.args,
                env: &task.env,
                inputs: &inputs,
                task_idx: task.task_idx,
                n_tasks: task.n_tasks,
                seed: task.seed(),
                cancel: Some(cancel),
            };
            let run = executor.run(&wasm_task, &task.limits, work.path());
            drop(work);
            run
        })
        .await
        .map_err(|err| format!("the wasm task's thread failed: {err}"))?;
        let run = run.map_err(|err| err.to_string())?;
        Ok(TaskRun { output: run.output.to_tar(), work_units: run.fuel_used })
    }

    #[cfg(not(feature = "wasm"))]
    async fn run_blocking(
        &self,
        _task: WasmTaskInput,
        _module: Arc<Vec<u8>>,
        _inputs: Vec<(String, Vec<u8>)>,
        _cancel: Arc<AtomicBool>,
    ) -> Result<TaskRun, String> {
        Err("this worker was built without the wasm executor".to_owned())
    }
}

/// How long pulling an image may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(1800);

/// A container image, pulled and mounted by podman: its file system and
/// the environment its config sets.
pub(crate) struct Image {
    root: PathBuf,
    env: Vec<(String, String)>,
}

impl Image {
    /// The image `reference`, from `mounted` or pulled (when missing) and
    /// mounted now. Mounts stay for the worker's life: podman counts them,
    /// and the next task of the job needs the same one.
    fn mounted(
        mounted: &Mutex<std::collections::HashMap<String, Arc<Image>>>,
        reference: &str,
    ) -> Result<Arc<Image>, String> {
        if let Some(image) = mounted.lock().expect("images lock").get(reference) {
            return Ok(image.clone());
        }
        let exists = Command::new("podman")
            .args(["image", "exists", reference])
            .stdin(Stdio::null())
            .status()
            .map_err(|err| format!("run podman: {err}"))?;
        if !exists.success() {
            tracing::info!(image = reference, "pulling a job's container image");
            podman(&["pull", "--quiet", reference], PULL_TIMEOUT)
                .map_err(|err| format!("pull the job's image {reference}: {err}"))?;
        }
        let root = podman(&["image", "mount", reference], VERSION_TIMEOUT)
            .map_err(|err| format!("mount the job's image {reference}: {err}"))?;
        let env = podman(&["image", "inspect", "--format", "{{json .Config.Env}}", reference], VERSION_TIMEOUT)
            .map_err(|err| format!("read the job's image {reference}: {err}"))?;
        let env: Vec<String> = serde_json::from_str(&env).unwrap_or_default();
        let env = env
            .iter()
            .filter_map(|pair| pair.split_once('='))
            .filter(|(name, _)| !name.starts_with("IOG_"))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let image = Arc::new(Image { root: PathBuf::from(root), env });
        mounted.lock().expect("images lock").insert(reference.to_owned(), image.clone());
        Ok(image)
    }
}

/// Runs podman with `args`, and returns its standard output, trimmed.
fn podman(args: &[&str], timeout: Duration) -> Result<String, String> {
    let mut child = Command::new("podman")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("run podman: {err}"))?;
    let deadline = Instant::now() + timeout;
    while child.try_wait().map_err(|err| err.to_string())?.is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("podman {} took more than {timeout:?}", args.join(" ")));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().map_err(|err| err.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).trim().to_owned());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// `container` with podman's version, when podman is installed and can
/// mount images here (it lists them); `None` otherwise.
pub fn detect_podman() -> Option<iog_sched::Software> {
    let version = podman(&["version", "--format", "{{.Client.Version}}"], VERSION_TIMEOUT).ok()?;
    if let Err(err) = podman(&["image", "ls", "--quiet"], VERSION_TIMEOUT) {
        tracing::warn!(error = %err, "podman is installed but cannot list images; containers not offered");
        return None;
    }
    Some(iog_sched::Software {
        name: iog_workloads::CONTAINER_SOFTWARE.to_owned(),
        version: format!("podman {}", version_in(&version)),
    })
}

/// How long a program may take to say its version.
const VERSION_TIMEOUT: Duration = Duration::from_secs(30);

/// Looks for `program` where a process task would find it (the sandbox's
/// PATH: `/usr/local/bin`, `/usr/bin`, `/bin`) and asks it for its
/// version (`--version`). `None` when it is not there or does not answer.
pub fn detect_program(program: &str) -> Option<iog_sched::Software> {
    let path = ["/usr/local/bin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(program))
        .find(|path| path.is_file())?;
    let mut child = Command::new(&path)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let deadline = Instant::now() + VERSION_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                tracing::warn!(program, "did not tell its version in {VERSION_TIMEOUT:?}; not offered");
                return None;
            }
        }
    }
    let output = child.wait_with_output().ok()?;
    let text = format!("{}\n{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    Some(iog_sched::Software { name: program.to_owned(), version: version_in(&text) })
}

/// The first word of `text` that looks like a version (`3.11.2`).
fn version_in(text: &str) -> String {
    text.split_whitespace()
        .map(|word| word.trim_start_matches('v').trim_end_matches([',', ';', ')']))
        .find(|word| word.starts_with(|c: char| c.is_ascii_digit()) && word.contains('.'))
        .filter(|word| {
            word.len() <= iog_sched::offer::SOFTWARE_VERSION_BYTES_MAX && word.bytes().all(|b| b.is_ascii_graphic())
        })
        .unwrap_or("unknown")
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_what_programs_print() {
        assert_eq!(version_in("Python 3.11.2\n"), "3.11.2");
        assert_eq!(version_in("Blender 3.4.1\n\tbuild date: 2023-02-14\n"), "3.4.1");
        assert_eq!(version_in("ffmpeg version 5.1.6-0+deb12u1 Copyright"), "5.1.6-0+deb12u1");
        assert_eq!(version_in("no version here"), "unknown");
    }

    #[test]
    fn a_program_on_the_path_is_found_with_its_version() {
        let sh = detect_program("sh").expect("sh is in /bin or /usr/bin");
        assert_eq!(sh.name, "sh");
        assert!(detect_program("no-such-program-anywhere").is_none());
    }
}
