use serde::{Deserialize, Serialize};

/// What sort of compute a device offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Cpu,
    Gpu,
}

/// One compute device a worker found on its host and offers to the network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub kind: DeviceKind,
    /// Stable name within the host, e.g. `cpu0`, `gpu0`.
    pub name: String,
    pub vendor: String,
    pub model: String,
    /// Memory usable by work on this device (system memory for the CPU).
    pub memory_bytes: u64,
    /// CPU: logical cores. GPU: streaming multiprocessors or compute units, where known.
    pub compute_units: u32,
    /// Which discovery path found it: `cpu`, `nvml`.
    pub source: String,
    /// Driver version for GPUs, where known.
    pub driver: Option<String>,
    /// CUDA compute capability such as `9.0`, where known.
    pub compute_capability: Option<String>,
    /// Vendor's unique id of the device, where known; used to avoid counting
    /// one GPU twice when several discovery paths see it.
    pub uuid: Option<String>,
    /// GPUs: the worker runs iog's GPU kernels on it (built with the `gpu`
    /// feature, its kernels past their self-test), the hardware challenge's
    /// included.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub kernels: bool,
}
