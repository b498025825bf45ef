//! Executors for users' own code: a `wasm` task's module, fetched with its
//! files and run in the WebAssembly sandbox of `iog-exec`.

use std::collections::VecDeque;
#[cfg(feature = "wasm")]
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use iog_client::Client;
use iog_types::BlobId;
use iog_workloads::{TaskRun, WasmTaskInput};

use crate::config::WorkerConfig;

/// Most bytes of modules and job files kept between tasks.
const FILE_CACHE_BYTES_MAX: usize = 512 << 20;

/// The executors this worker runs users' code in, and what they share:
/// compiled modules (inside the wasm executor) and fetched files.
pub(crate) struct Executors {
    caps: crate::config::Executors,
    /// Each task runs in a fresh folder under here, removed after.
    #[cfg(feature = "wasm")]
    work_dir: PathBuf,
    #[cfg(feature = "wasm")]
    wasm: Option<Arc<iog_exec::WasmExecutor>>,
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
    pub(crate) fn new(config: &WorkerConfig) -> anyhow::Result<Executors> {
        #[cfg(feature = "wasm")]
        let work_dir = config.data_dir.join("work");
        #[cfg(feature = "wasm")]
        let wasm = match config.executors.wasm {
            Some(_) => {
                std::fs::create_dir_all(&work_dir)
                    .map_err(|err| anyhow::anyhow!("create the work folder {}: {err}", work_dir.display()))?;
                let executor =
                    iog_exec::WasmExecutor::new().map_err(|err| anyhow::anyhow!("start the wasm executor: {err}"))?;
                Some(Arc::new(executor))
            }
            None => None,
        };
        Ok(Executors {
            caps: config.executors.clone(),
            #[cfg(feature = "wasm")]
            work_dir,
            #[cfg(feature = "wasm")]
            wasm,
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
