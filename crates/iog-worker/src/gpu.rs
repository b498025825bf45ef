//! GPU kernels for the built-in workloads: which GPUs have them, and one
//! task at a time on each.

use std::sync::{Arc, Mutex};

use iog_workloads::Accelerator;

/// Whether this worker was built with GPU kernels (the `gpu` feature).
pub const GPU_BUILT_IN: bool = cfg!(feature = "gpu");

/// How the worker uses its GPUs for the built-in workloads' kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GpuKernels {
    /// Run the built-in workloads' GPU kernels (wgpu) on GPUs, for tasks
    /// whose job asks for a GPU. On by default; has effect in a worker
    /// built with the `gpu` feature.
    pub enabled: bool,
    /// Offer software adapters (Mesa's llvmpipe), which run on the CPU, as
    /// GPUs too: to try the GPU path on a machine without a GPU. Off by
    /// default.
    pub software: bool,
}

impl Default for GpuKernels {
    fn default() -> GpuKernels {
        GpuKernels { enabled: true, software: false }
    }
}

/// The GPUs with kernels, each lent to one task at a time.
#[derive(Default)]
pub(crate) struct KernelPool {
    free: Mutex<Vec<Arc<dyn Accelerator>>>,
}

/// A GPU lent to one task; back in the pool when dropped.
pub(crate) struct KernelLease {
    pool: Arc<KernelPool>,
    gpu: Option<Arc<dyn Accelerator>>,
}

impl KernelPool {
    pub(crate) fn new(gpus: Vec<Arc<dyn Accelerator>>) -> KernelPool {
        KernelPool { free: Mutex::new(gpus) }
    }

    /// A free GPU with kernels, the lowest-named first; `None` when there is
    /// none (the task runs on the CPU).
    pub(crate) fn take(self: &Arc<Self>) -> Option<KernelLease> {
        let mut free = self.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        free.sort_by(|a, b| b.device().cmp(a.device()));
        let gpu = free.pop()?;
        Some(KernelLease { pool: self.clone(), gpu: Some(gpu) })
    }
}

impl KernelLease {
    pub(crate) fn accelerator(&self) -> &dyn Accelerator {
        self.gpu.as_deref().expect("a lease holds its GPU until dropped")
    }

    /// Takes the GPU out of the pool for good: its kernel failed.
    pub(crate) fn retire(mut self) {
        self.gpu = None;
    }
}

impl Drop for KernelLease {
    fn drop(&mut self) {
        if let Some(gpu) = self.gpu.take() {
            self.pool.free.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(gpu);
        }
    }
}

/// Times the compute challenge a coordinator would send this GPU (one of
/// [`iog_trust::claim::CHALLENGE_TARGET_MS`] at its model's rate) against
/// the challenge's deadline without the network allowance; gives up at
/// twice the deadline.
#[cfg(feature = "gpu")]
fn meets_its_challenge(gpu: &iog_gpu::Gpu) -> Result<String, String> {
    let claim = iog_trust::gpu_claim(gpu.model());
    let plan =
        claim.plan_compute([0x5e; 32], iog_trust::claim::CHALLENGE_TARGET_MS, 0).map_err(|err| err.to_string())?;
    let products: Vec<_> = (0..plan.challenge.n_products).map(|idx| plan.challenge.product(idx)).collect();
    let started = std::time::Instant::now();
    let give_up = std::time::Duration::from_millis(2 * plan.deadline_ms);
    let keep_going = || started.elapsed() < give_up;
    let rows = gpu.challenge_rows(&products, &keep_going).map_err(|err| err.to_string())?;
    let ms = started.elapsed().as_millis() as u64;
    let (n, count) = (plan.challenge.n, plan.challenge.n_products);
    match rows {
        None => Err(format!("its kernel does not take a challenge of n = {n}")),
        Some(_) if ms > plan.deadline_ms => Err(format!(
            "its challenge ({count} product(s) of n = {n}, {:.1e} int8 op/s for {}) took {ms} ms, past the {} ms \
             deadline",
            claim.int8_ops_per_s,
            gpu.model(),
            plan.deadline_ms
        )),
        Some(_) => Ok(format!(
            "computes its challenge ({count} product(s) of n = {n}) in {ms} ms of its {} ms deadline",
            plan.deadline_ms
        )),
    }
}

/// The devices this worker offers: the CPU, NVIDIA GPUs through NVML, and
/// in a worker built with the `gpu` feature every GPU wgpu can open, each
/// counted once; with notes on what was left out. Blocks for a while (the
/// kernels are compiled to check them).
pub fn discover(gpu: GpuKernels) -> iog_host::DiscoveryReport {
    discover_with_kernels(gpu).0
}

/// [`discover`], with the GPUs whose kernels compiled.
pub(crate) fn discover_with_kernels(gpu: GpuKernels) -> (iog_host::DiscoveryReport, Vec<Arc<dyn Accelerator>>) {
    #[allow(unused_mut)]
    let mut report = iog_host::discover_devices();
    #[cfg(feature = "gpu")]
    let kernels = if gpu.enabled { open(&mut report, gpu.software) } else { Vec::new() };
    #[cfg(not(feature = "gpu"))]
    let kernels = Vec::new();
    #[cfg(not(feature = "gpu"))]
    if gpu.software {
        report.notes.push("wgpu: this worker is built without the gpu feature; no GPU kernels".to_owned());
    }
    (report, kernels)
}

/// Finds the GPUs wgpu can open, adds those NVML did not see to `report`'s
/// devices, and compiles the kernels on each. A GPU whose kernels do not
/// compile is still offered, without kernels, and noted.
#[cfg(feature = "gpu")]
fn open(report: &mut iog_host::DiscoveryReport, software: bool) -> Vec<Arc<dyn Accelerator>> {
    let discovery = iog_gpu::discover(iog_gpu::DiscoverOptions { software });
    report.notes.extend(discovery.notes);
    // Merged on a copy: a GPU only wgpu sees is offered once its kernels
    // run, since nothing else here could use it.
    let mut merged = report.devices.clone();
    let mut opened: Vec<Arc<dyn Accelerator>> = Vec::new();
    for (name, adapter) in iog_gpu::merge(&mut merged, &report.pci_bus_ids, discovery.adapters) {
        match iog_gpu::Gpu::open(&name, &adapter) {
            Ok(gpu) => {
                report.notes.push(format!(
                    "wgpu: {name} ({}, {}) runs the built-in workloads' GPU kernels",
                    adapter.model(),
                    adapter.backend()
                ));
                if let Some(err) = gpu.render_error() {
                    report.notes.push(format!("wgpu: {name} leaves render tiles to the CPU: {err}"));
                }
                if let Some(err) = gpu.nbody_error() {
                    report.notes.push(format!("wgpu: {name} leaves nbody windows to the CPU: {err}"));
                }
                if let Some(device) = merged.iter().find(|device| device.name == name)
                    && !report.devices.iter().any(|known| known.name == name)
                {
                    report.devices.push(device.clone());
                }
                // Its kernels run, the hardware challenge's among them; it
                // is offered for challenges only if it meets what its model
                // is held to, so an honest slow GPU is not failed (and
                // slashed) round after round.
                match meets_its_challenge(&gpu) {
                    Ok(note) => {
                        report.notes.push(format!("wgpu: {name}: {note}"));
                        if let Some(device) = report.devices.iter_mut().find(|device| device.name == name) {
                            device.kernels = true;
                        }
                    }
                    Err(why) => report.notes.push(format!(
                        "wgpu: {name} runs tasks but is offered without hardware challenges (its trust is the \
                         worker's stake's): {why}"
                    )),
                }
                opened.push(Arc::new(gpu));
            }
            Err(err) => report.notes.push(format!("wgpu: {name}: {err}; not used")),
        }
    }
    opened
}
