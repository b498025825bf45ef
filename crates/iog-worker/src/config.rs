use std::path::PathBuf;

/// How to run a worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Base URL of the coordinator, e.g. `http://127.0.0.1:7070`.
    pub coordinator_url: String,
    /// Where the worker keeps its identity key.
    pub data_dir: PathBuf,
    /// Tasks run at once. Default 1: the built-in workloads already use every core.
    pub slots: u32,
    /// First wait before reconnecting. Default 100 ms.
    pub reconnect_backoff_min_ms: u64,
    /// Longest wait between reconnect attempts. Default 5000 ms.
    pub reconnect_backoff_max_ms: u64,
}

impl WorkerConfig {
    pub fn new(coordinator_url: impl Into<String>, data_dir: PathBuf) -> WorkerConfig {
        WorkerConfig {
            coordinator_url: coordinator_url.into(),
            data_dir,
            slots: 1,
            reconnect_backoff_min_ms: 100,
            reconnect_backoff_max_ms: 5_000,
        }
    }
}
