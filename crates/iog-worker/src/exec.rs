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
    /// Where process tasks' folders are made: a folder of its own under
    /// the system's temporary folder (mode 0711), which the sandbox's
    /// unprivileged user can pass through, unlike the worker's data dir;
    /// removed when the worker stops.
    process_work: Option<tempfile::TempDir>,
    /// This machine's NVIDIA GPUs, each given to one process task at a time.
    gpus: Arc<GpuPool>,
    /// GPUs with the built-in workloads' kernels, each given to one task at
    /// a time.
    kernels: Arc<crate::gpu::KernelPool>,
    /// Container images unpacked for process tasks, by reference.
    images: Arc<Mutex<std::collections::HashMap<String, Arc<Image>>>>,
    /// The worker's own podman store and where images are unpacked.
    image_store: Option<ImageStore>,
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
    pub(crate) fn new(
        config: &WorkerConfig,
        devices: &[Device],
        kernels: Vec<Arc<dyn iog_workloads::Accelerator>>,
    ) -> anyhow::Result<Executors> {
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
        let process_work = match &process {
            Some(_) => {
                use std::os::unix::fs::PermissionsExt;
                let dir = tempfile::Builder::new()
                    .prefix("iog-process-")
                    .tempdir()
                    .map_err(|err| anyhow::anyhow!("make a folder for process tasks: {err}"))?;
                std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))
                    .map_err(|err| anyhow::anyhow!("open {} to the sandbox: {err}", dir.path().display()))?;
                Some(dir)
            }
            None => None,
        };
        let image_store = match &process_work {
            Some(work) => {
                let unpacked = work.path().join("images");
                std::fs::create_dir_all(&unpacked)
                    .map_err(|err| anyhow::anyhow!("make {}: {err}", unpacked.display()))?;
                let podman_dir = config.data_dir.join("podman");
                Some(ImageStore {
                    args: vec![
                        "--root".to_owned(),
                        podman_dir.join("storage").display().to_string(),
                        "--runroot".to_owned(),
                        podman_dir.join("run").display().to_string(),
                    ],
                    unpacked,
                })
            }
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
            image_store,
            process_work,
            gpus: Arc::new(GpuPool::new(gpus)),
            kernels: Arc::new(crate::gpu::KernelPool::new(kernels)),
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

    /// Runs an infer task: its weights and data fetched (or taken from the
    /// cache, so a worker that runs several shards of one job fetches them
    /// once), then the model run over its shard on a blocking thread.
    pub(crate) async fn run_infer(
        &self,
        client: &Client,
        task: Box<iog_workloads::InferTask>,
    ) -> Result<TaskRun, String> {
        let mut blobs = std::collections::BTreeMap::new();
        for blob in task.blobs() {
            blobs.insert(blob, self.file(client, blob).await?);
        }
        tokio::task::spawn_blocking(move || iog_workloads::infer::run(&task, &blobs))
            .await
            .map_err(|err| format!("an infer task panicked: {err}"))?
            .map_err(|err| err.to_string())
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
    /// A GPU with kernels for a built-in task whose job asks for one;
    /// `None` when none is free (the task runs on the CPU).
    pub(crate) fn kernel(&self) -> Option<crate::gpu::KernelLease> {
        self.kernels.take()
    }

    /// Runs a process task; also says which GPU it was given first, if any.
    pub(crate) async fn run_process(
        &self,
        client: &Client,
        task: ProcessTaskInput,
    ) -> Result<(TaskRun, Option<String>), String> {
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
                let Some(store) = self.image_store.clone() else {
                    return Err("this worker has no folder for images".to_owned());
                };
                let (images, reference) = (self.images.clone(), reference.clone());
                Some(
                    tokio::task::spawn_blocking(move || Image::unpacked(&images, &store, &reference))
                        .await
                        .map_err(|err| format!("the image's thread failed: {err}"))??,
                )
            }
        };
        let gpus = self.gpus.take(task.gpus as usize)?;
        let device = gpus.indices.first().map(|idx| format!("gpu{idx}"));
        let mut inputs = Vec::with_capacity(task.files.len());
        for (name, blob) in &task.files {
            inputs.push((name.clone(), self.file(client, *blob).await?.to_vec()));
        }
        let base = self.process_work.as_ref().map_or(self.work_dir.as_path(), |dir| dir.path());
        let work = tempfile::Builder::new()
            .prefix("task-")
            .tempdir_in(base)
            .map_err(|err| format!("make a work folder in {}: {err}", base.display()))?;
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
                gpus: &gpus.indices,
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
        Ok((TaskRun { output: run.output.to_tar(), work_units: run.elapsed.as_millis() as u64 }, device))
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

/// The GPUs process tasks may be given, by their index (NVML's, taken to
/// be the minor number of `/dev/nvidiaN`): each to one task at a time, so
/// two tasks running at once never share one.
pub(crate) struct GpuPool {
    free: Mutex<Vec<u32>>,
    all: usize,
}

/// GPUs given to one task, back in the pool when dropped (when its
/// process has ended, not merely when its lease did).
pub(crate) struct GpuLease {
    pool: Arc<GpuPool>,
    indices: Vec<u32>,
}

impl GpuPool {
    pub(crate) fn new(indices: Vec<u32>) -> GpuPool {
        GpuPool { all: indices.len(), free: Mutex::new(indices) }
    }

    /// `n` free GPUs, the lowest indices first.
    pub(crate) fn take(self: &Arc<Self>, n: usize) -> Result<GpuLease, String> {
        let mut free = self.free.lock().expect("gpu pool lock");
        if free.len() < n {
            return Err(format!(
                "the task asks for {n} GPUs; {} of this worker's {} are free to pass in",
                free.len(),
                self.all
            ));
        }
        free.sort_unstable();
        let indices = free.drain(..n).collect();
        Ok(GpuLease { pool: self.clone(), indices })
    }
}

impl Drop for GpuLease {
    fn drop(&mut self) {
        self.pool.free.lock().expect("gpu pool lock").append(&mut self.indices);
    }
}

/// How long pulling an image may take.
const PULL_TIMEOUT: Duration = Duration::from_secs(1800);

/// A container image, pulled by podman into the worker's own image store
/// and copied out to a folder the sandbox's user can read: its file system
/// and the environment its config sets.
pub(crate) struct Image {
    root: PathBuf,
    env: Vec<(String, String)>,
}

/// The worker's own podman image store (`<data dir>/podman`), apart from
/// the owner's images, so a job can only ever name an image the worker
/// pulled for a job.
#[derive(Clone)]
pub(crate) struct ImageStore {
    /// `--root` and `--runroot` of every podman command.
    args: Vec<String>,
    /// Where images' file systems are copied, one folder each.
    unpacked: PathBuf,
}

impl ImageStore {
    fn podman(&self, args: &[&str], timeout: Duration) -> Result<String, String> {
        let mut all: Vec<&str> = self.args.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        podman(&all, timeout)
    }
}

impl Image {
    /// The image `reference`: unpacked already, or pulled (when the store
    /// lacks it), mounted, copied out and unmounted now. One image is
    /// fetched at a time (`images` is held throughout), so two tasks of a
    /// job never pull it twice.
    fn unpacked(
        images: &Mutex<std::collections::HashMap<String, Arc<Image>>>,
        store: &ImageStore,
        reference: &str,
    ) -> Result<Arc<Image>, String> {
        let mut images = images.lock().expect("images lock");
        if let Some(image) = images.get(reference) {
            return Ok(image.clone());
        }
        if store.podman(&["image", "exists", reference], VERSION_TIMEOUT).is_err() {
            tracing::info!(image = reference, "pulling a job's container image");
            // From a registry, never from a file or daemon on this machine.
            store
                .podman(&["pull", "--quiet", &format!("docker://{reference}")], PULL_TIMEOUT)
                .map_err(|err| format!("pull the job's image {reference}: {err}"))?;
        }
        let mounted = store
            .podman(&["image", "mount", reference], VERSION_TIMEOUT)
            .map_err(|err| format!("mount the job's image {reference}: {err}"))?;
        let root = store.unpacked.join(format!("image-{}", images.len()));
        let copied = Command::new("cp")
            .arg("-a")
            .arg(format!("{mounted}/."))
            .arg(&root)
            .stdin(Stdio::null())
            .output()
            .map_err(|err| format!("run cp: {err}"));
        let _ = store.podman(&["image", "unmount", reference], VERSION_TIMEOUT);
        let copied = copied?;
        if !copied.status.success() {
            let _ = std::fs::remove_dir_all(&root);
            return Err(format!(
                "copy the job's image {reference} out of podman's store: {}",
                String::from_utf8_lossy(&copied.stderr).trim()
            ));
        }
        let env = store
            .podman(&["image", "inspect", "--format", "{{json .Config.Env}}", reference], VERSION_TIMEOUT)
            .map_err(|err| format!("read the job's image {reference}: {err}"))?;
        let env: Vec<String> = serde_json::from_str(&env).unwrap_or_default();
        let env = env
            .iter()
            .filter_map(|pair| pair.split_once('='))
            .filter(|(name, _)| !name.starts_with("IOG_"))
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        let image = Arc::new(Image { root, env });
        images.insert(reference.to_owned(), image.clone());
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

/// `container` with podman's version, when podman is installed, lists
/// images and the worker runs as root (to mount them); `None` otherwise.
pub fn detect_podman() -> Option<iog_sched::Software> {
    let version = podman(&["version", "--format", "{{.Client.Version}}"], VERSION_TIMEOUT).ok()?;
    // `podman image mount`, which unpacks an image, needs root (rootless
    // podman mounts only with its slow vfs driver).
    let root = std::fs::metadata("/proc/self").is_ok_and(|meta| std::os::unix::fs::MetadataExt::uid(&meta) == 0);
    if !root {
        tracing::warn!("podman is installed, but containers need a worker running as root; not offered");
        return None;
    }
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

/// The programs of `programs` that run in the process sandbox, each with
/// the version it prints for `--version`, run there as a task would run
/// it (so a program that needs files outside the sandbox is not offered).
/// A program missing from the sandbox's PATH (`/usr/local/bin`, `/usr/bin`,
/// `/bin`) is left out quietly; one that fails there, with a warning.
pub fn detect_programs(programs: &[String]) -> Vec<iog_sched::Software> {
    let on_path: Vec<&String> = programs
        .iter()
        .filter(|program| {
            ["/usr/local/bin", "/usr/bin", "/bin"].iter().any(|dir| Path::new(dir).join(program).is_file())
        })
        .collect();
    if on_path.is_empty() {
        return Vec::new();
    }
    let executor = match iog_exec::ProcessExecutor::new() {
        Ok(executor) => executor,
        Err(err) => {
            tracing::warn!(error = %err, "no sandbox to look for programs in");
            return Vec::new();
        }
    };
    let Ok(base) = tempfile::Builder::new().prefix("iog-probe-").tempdir() else { return Vec::new() };
    let limits = iog_workloads::ProcessLimits {
        memory_bytes: 2 << 30,
        cpu_s: VERSION_TIMEOUT.as_secs(),
        wall_ms: VERSION_TIMEOUT.as_millis() as u64,
        output_bytes: 1 << 20,
    };
    let args = ["--version".to_owned()];
    let mut found = Vec::new();
    for program in on_path {
        let task = iog_exec::ProcessTask {
            program,
            args: &args,
            env: &[],
            inputs: &[],
            task_idx: 0,
            n_tasks: 1,
            gpus: &[],
            network: false,
            root: None,
            cancel: None,
        };
        let Ok(work) = tempfile::Builder::new().prefix("probe-").tempdir_in(base.path()) else { continue };
        match executor.run(&task, &limits, work.path()) {
            Ok(run) => {
                let version = version_in(&String::from_utf8_lossy(run.output.stdout()));
                found.push(iog_sched::Software { name: program.clone(), version });
            }
            Err(err) => tracing::warn!(program, error = %err, "does not run in the sandbox; not offered"),
        }
    }
    found
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
    fn each_gpu_goes_to_one_task_at_a_time() {
        let pool = Arc::new(GpuPool::new(vec![1, 0, 2]));
        let first = pool.take(1).unwrap();
        let second = pool.take(2).unwrap();
        assert_eq!((first.indices.as_slice(), second.indices.as_slice()), (&[0][..], &[1, 2][..]));
        let err = pool.take(1).err().unwrap();
        assert_eq!(err, "the task asks for 1 GPUs; 0 of this worker's 3 are free to pass in");
        drop(second);
        assert_eq!(pool.take(2).unwrap().indices, [1, 2]);
        assert!(pool.take(0).unwrap().indices.is_empty());
    }

    #[test]
    fn versions_are_read_from_what_programs_print() {
        assert_eq!(version_in("Python 3.11.2\n"), "3.11.2");
        assert_eq!(version_in("Blender 3.4.1\n\tbuild date: 2023-02-14\n"), "3.4.1");
        assert_eq!(version_in("ffmpeg version 5.1.6-0+deb12u1 Copyright"), "5.1.6-0+deb12u1");
        assert_eq!(version_in("no version here"), "unknown");
    }

    #[test]
    fn programs_are_offered_when_they_run_in_the_sandbox() {
        if iog_exec::ProcessExecutor::new().is_err() {
            assert!(
                std::env::var_os("IOG_REQUIRE_SANDBOX").is_none(),
                "IOG_REQUIRE_SANDBOX is set but no sandbox runs"
            );
            return;
        }
        // bash prints its version; dash's `sh --version` fails, so sh is
        // not offered; a program that is not there is left out.
        let names = ["bash", "sh", "no-such-program-anywhere"].map(str::to_owned);
        let found = detect_programs(&names);
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].name, "bash");
        assert!(found[0].version.starts_with(|c: char| c.is_ascii_digit()), "{found:?}");
    }
}
