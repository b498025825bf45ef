//! GPUs of any vendor through wgpu (Vulkan, Metal, DX12): finding them,
//! and compute kernels for the built-in workloads.
//!
//! [`discover`] lists the adapters wgpu can open; [`merge`] folds them into
//! the worker's device list beside NVML's view, so that one GPU seen by
//! both counts once; [`Gpu::open`] compiles the kernels on one adapter and
//! gives an [`iog_workloads::Accelerator`], whose results are the CPU
//! path's: the same bytes for a hash search, sums within the workload's
//! tolerance for a sim task (the kernels compute in `f32`).
//!
//! Software adapters (Mesa's llvmpipe, Microsoft's WARP) run on the CPU:
//! they are left out unless asked for, as tests on machines without a GPU
//! do.

mod challenge;
mod hash;
mod nbody;
mod render;
mod sim;

pub use sim::U64Ops;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use iog_types::{Device, DeviceKind};
use iog_workloads::{AccelError, Accelerator, HashFinds, HashSearch, SimBlock, SimKernelTask};

/// A WGSL module's compute pipelines over one bind group of buffers:
/// binding `i` is a buffer of type `bindings[i]`, seen by compute shaders
/// only. Returns the layout and a pipeline per entry point, in order.
fn compute_pipelines(
    device: &wgpu::Device,
    label: &str,
    source: String,
    bindings: &[wgpu::BufferBindingType],
    entry_points: &[&str],
) -> (wgpu::BindGroupLayout, Vec<wgpu::ComputePipeline>) {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let entries: Vec<wgpu::BindGroupLayoutEntry> = (0u32..)
        .zip(bindings)
        .map(|(binding, ty)| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer { ty: *ty, has_dynamic_offset: false, min_binding_size: None },
            count: None,
        })
        .collect();
    let layout =
        device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor { label: Some(label), entries: &entries });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(&layout)],
        immediate_size: 0,
    });
    let pipelines = entry_points
        .iter()
        .map(|entry_point| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry_point),
                layout: Some(&pipeline_layout),
                module: &module,
                entry_point: Some(entry_point),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                cache: None,
            })
        })
        .collect();
    (layout, pipelines)
}

/// A buffer of `size` bytes, not mapped at creation.
fn new_buffer(device: &wgpu::Device, label: &str, size: u64, usage: wgpu::BufferUsages) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor { label: Some(label), size, usage, mapped_at_creation: false })
}

/// A bind group of whole buffers: binding `i` is `buffers[i]`.
fn bind_buffers(
    device: &wgpu::Device,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = (0u32..)
        .zip(buffers)
        .map(|(binding, buffer)| wgpu::BindGroupEntry { binding, resource: buffer.as_entire_binding() })
        .collect();
    device.create_bind_group(&wgpu::BindGroupDescriptor { label: Some(label), layout, entries: &entries })
}

/// What [`discover`] looks at.
#[derive(Debug, Clone, Copy, Default)]
pub struct DiscoverOptions {
    /// Offer software adapters (which run on the CPU) as GPUs too.
    pub software: bool,
}

/// An adapter wgpu can open.
#[derive(Debug)]
pub struct Adapter {
    adapter: wgpu::Adapter,
    info: wgpu::AdapterInfo,
}

impl Adapter {
    /// The adapter's model name, as its driver gives it.
    pub fn model(&self) -> &str {
        &self.info.name
    }

    /// Which API wgpu reaches it through: `vulkan`, `metal`, `dx12`.
    pub fn backend(&self) -> String {
        self.info.backend.to_string().to_ascii_lowercase()
    }

    /// Whether it is a software rasteriser running on the CPU.
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// Its PCI address as `domain:bus:device.function` numbers, where the
    /// backend tells it.
    fn pci(&self) -> Option<PciAddress> {
        PciAddress::parse(&self.info.device_pci_bus_id)
    }

    fn vendor(&self) -> String {
        match self.info.vendor {
            NVIDIA => "NVIDIA".to_owned(),
            0x1002 => "AMD".to_owned(),
            0x8086 => "Intel".to_owned(),
            0x106b => "Apple".to_owned(),
            0x10005 => "Mesa".to_owned(),
            0x1414 => "Microsoft".to_owned(),
            other => format!("vendor {other:#06x}"),
        }
    }

    /// The adapter as a device to offer, named `name`.
    fn device(&self, name: String) -> Device {
        Device {
            kind: DeviceKind::Gpu,
            name,
            vendor: self.vendor(),
            model: self.info.name.clone(),
            // wgpu does not say how much memory an adapter has.
            memory_bytes: 0,
            compute_units: 0,
            source: format!("wgpu-{}", self.backend()),
            driver: Some(format!("{} {}", self.info.driver, self.info.driver_info).trim().to_owned())
                .filter(|driver| !driver.is_empty()),
            compute_capability: None,
            uuid: None,
            // The worker says so once the kernels run on it.
            kernels: false,
        }
    }
}

/// A PCI address, compared by its numbers: NVML writes the domain with
/// eight digits (`00000000:01:00.0`), Vulkan with four (`0000:01:00.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PciAddress {
    domain: u32,
    bus: u32,
    device: u32,
    function: u32,
}

impl PciAddress {
    /// Reads `domain:bus:device.function` in hex; `None` for anything else.
    pub fn parse(text: &str) -> Option<PciAddress> {
        let mut parts = text.trim().split(':');
        let (domain, bus, rest) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let (device, function) = rest.split_once('.')?;
        let hex = |part: &str| u32::from_str_radix(part, 16).ok();
        Some(PciAddress { domain: hex(domain)?, bus: hex(bus)?, device: hex(device)?, function: hex(function)? })
    }
}

/// What [`discover`] found.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Adapters to use, each physical GPU once.
    pub adapters: Vec<Adapter>,
    /// What was left out and why, each starting with `wgpu:`.
    pub notes: Vec<String>,
}

/// Lists the GPUs wgpu can open through Vulkan, Metal or DX12, each once
/// (a GPU that two APIs reach is kept through the first of them).
pub fn discover(options: DiscoverOptions) -> Discovery {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor {
        backends: wgpu::Backends::VULKAN | wgpu::Backends::METAL | wgpu::Backends::DX12,
        ..wgpu::InstanceDescriptor::new_without_display_handle()
    });
    let mut discovery = Discovery::default();
    let mut kept: Vec<(wgpu::Backend, u32, u32, Option<PciAddress>, String)> = Vec::new();
    for adapter in pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all())) {
        let adapter = Adapter { info: adapter.get_info(), adapter };
        let info = &adapter.info;
        // One GPU reached through two APIs (or two drivers) is one GPU: the
        // same PCI address where the backends tell it; otherwise the same
        // vendor, device id and name through another backend. Two
        // identical GPUs through one backend without addresses stay two.
        let same_gpu = kept.iter().any(|(backend, vendor, device, pci, name)| match (pci, adapter.pci()) {
            (Some(pci), Some(other)) => *pci == other,
            _ => *backend != info.backend && *vendor == info.vendor && *device == info.device && *name == info.name,
        });
        if same_gpu {
            continue;
        }
        kept.push((info.backend, info.vendor, info.device, adapter.pci(), info.name.clone()));
        if adapter.is_software() && !options.software {
            discovery.notes.push(format!(
                "wgpu: {} ({}) is a software adapter that runs on the CPU; not offered as a GPU",
                adapter.info.name,
                adapter.backend()
            ));
            continue;
        }
        discovery.adapters.push(adapter);
    }
    if discovery.adapters.is_empty() {
        discovery.notes.push(
            "wgpu: no GPU adapter found (Vulkan, Metal or DX12); GPU kernels are off and tasks run on the CPU"
                .to_owned(),
        );
    }
    discovery
}

/// Folds `adapters` into `devices` (the worker's list, NVML's GPUs named
/// `gpu<N>` with their PCI addresses in `pci_by_name`). An adapter at the
/// PCI address of a listed GPU is that GPU; an NVIDIA adapter whose address
/// the backend does not tell is the NVML GPU of its model when exactly one
/// is left; any other adapter is a new device named after the last GPU.
/// Returns each adapter with the name of its device, leaving out an
/// adapter that is a second view of a GPU another one already stands for.
pub fn merge(
    devices: &mut Vec<Device>,
    pci_by_name: &HashMap<String, String>,
    adapters: Vec<Adapter>,
) -> Vec<(String, Adapter)> {
    let seen: Vec<Seen> = adapters
        .iter()
        .map(|adapter| Seen {
            vendor_id: adapter.info.vendor,
            pci: adapter.pci(),
            device: adapter.device(String::new()),
        })
        .collect();
    let names = merge_seen(devices, pci_by_name, seen);
    names.into_iter().zip(adapters).filter_map(|(name, adapter)| Some((name?, adapter))).collect()
}

/// What [`merge`] needs to know of an adapter.
struct Seen {
    vendor_id: u32,
    pci: Option<PciAddress>,
    /// The adapter as a device, its name still to be given.
    device: Device,
}

fn merge_seen(
    devices: &mut Vec<Device>,
    pci_by_name: &HashMap<String, String>,
    seen: Vec<Seen>,
) -> Vec<Option<String>> {
    let mut by_pci: HashMap<PciAddress, String> = HashMap::new();
    for (name, address) in pci_by_name {
        if let Some(address) = PciAddress::parse(address) {
            by_pci.insert(address, name.clone());
        }
    }
    let nvml_names: Vec<String> =
        devices.iter().filter(|device| device.source == "nvml").map(|device| device.name.clone()).collect();
    let mut unmatched_nvml = nvml_names.clone();
    let mut next_gpu = devices
        .iter()
        .filter_map(|device| device.name.strip_prefix("gpu")?.parse::<u32>().ok())
        .max()
        .map_or(0, |last| last + 1);
    let mut names = Vec::new();
    for adapter in seen {
        let same = match adapter.pci {
            Some(address) => by_pci.get(&address).cloned(),
            // Without an address, an NVIDIA adapter is an NVML GPU only when
            // exactly one unmatched NVML GPU has its model; when none is
            // left but NVML saw that model, it is a second view of one.
            None if adapter.vendor_id == NVIDIA => {
                let nvml_named =
                    |name: &String| devices.iter().any(|d| &d.name == name && d.model == adapter.device.model);
                let mut candidates = unmatched_nvml.iter().filter(|name| nvml_named(name));
                match (candidates.next(), candidates.next()) {
                    (Some(name), None) => Some(name.clone()),
                    (None, _) => nvml_names.iter().find(|name| nvml_named(name)).cloned(),
                    _ => None,
                }
            }
            None => None,
        };
        let name = match same {
            // An NVML GPU another adapter already stands for: this one is a
            // second view of it, not a device of its own.
            Some(name) if !unmatched_nvml.contains(&name) => None,
            Some(name) => {
                unmatched_nvml.retain(|other| *other != name);
                Some(name)
            }
            None => {
                let name = format!("gpu{next_gpu}");
                next_gpu += 1;
                devices.push(Device { name: name.clone(), ..adapter.device });
                Some(name)
            }
        };
        names.push(name);
    }
    names
}

/// NVIDIA's PCI vendor id.
const NVIDIA: u32 = 0x10de;

/// Longest wait for one batch of a kernel: batches are sized to about
/// 100 ms, so a device that takes this long has hung.
const BATCH_TIMEOUT: Duration = Duration::from_secs(60);

/// A GPU's kernels could not be prepared or did not run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GpuError {
    /// The adapter gave no device.
    #[error("open {model}: {message}")]
    Open {
        /// The adapter's model.
        model: String,
        /// wgpu's reason.
        message: String,
    },
    /// A kernel failed on the device (lost device, out of memory, invalid
    /// use).
    #[error("{0}")]
    Device(String),
}

/// One GPU opened with its kernels compiled: an accelerator for the
/// built-in workloads.
pub struct Gpu {
    name: String,
    model: String,
    device: wgpu::Device,
    queue: wgpu::Queue,
    hash: hash::HashKernels,
    sim: sim::SimKernels,
    challenge: challenge::ChallengeKernels,
    render: render::RenderKernels,
    /// The nbody kernel, where the device has 64-bit floats and the kernel
    /// passed its self-test.
    nbody: Option<nbody::NbodyKernels>,
    /// Why the render kernel failed its self-test at open, if it did: render
    /// tiles then go to the CPU.
    render_error: Option<String>,
    /// Why nbody windows go to the CPU on this device (no 64-bit floats, or
    /// a failed self-test), if they do.
    nbody_error: Option<String>,
    /// The first error the device reported outside a call that returns one.
    error: Arc<Mutex<Option<String>>>,
    /// One kernel at a time: the readback buffers are per call, but a
    /// task's batches should not interleave with another's.
    busy: Mutex<()>,
}

impl std::fmt::Debug for Gpu {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Gpu").field("name", &self.name).field("model", &self.model).finish_non_exhaustive()
    }
}

impl Gpu {
    /// Opens `adapter` as device `name` and compiles the kernels.
    pub fn open(name: &str, adapter: &Adapter) -> Result<Gpu, GpuError> {
        let open_error = |message: String| GpuError::Open { model: adapter.info.name.clone(), message };
        let (device, queue) = pollster::block_on(adapter.adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some(name),
            // 64-bit floats for the nbody kernel, where the adapter has them.
            required_features: adapter.adapter.features() & wgpu::Features::SHADER_F64,
            required_limits: wgpu::Limits::downlevel_defaults().using_resolution(adapter.adapter.limits()),
            ..Default::default()
        }))
        .map_err(|err| open_error(err.to_string()))?;
        let error = Arc::new(Mutex::new(None));
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |err: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(PoisonError::into_inner);
            slot.get_or_insert_with(|| err.to_string());
        }));
        let scopes = [wgpu::ErrorFilter::Validation, wgpu::ErrorFilter::Internal, wgpu::ErrorFilter::OutOfMemory]
            .map(|filter| device.push_error_scope(filter));
        let hash = hash::HashKernels::new(&device);
        let sim = sim::SimKernels::new(&device);
        let challenge = challenge::ChallengeKernels::new(&device);
        let render = render::RenderKernels::new(&device);
        for scope in scopes.into_iter().rev() {
            if let Some(err) = pollster::block_on(scope.pop()) {
                return Err(open_error(format!("the kernels do not compile: {err}")));
            }
        }
        if let Some(err) = error.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Err(open_error(err));
        }
        // The nbody kernel is optional: one that does not compile leaves
        // nbody windows to the CPU and the other kernels in use.
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let mut nbody = nbody::NbodyKernels::new(&device);
        let mut nbody_error = match &nbody {
            None => Some("the adapter has no 64-bit floats (wgpu's SHADER_F64)".to_owned()),
            Some(_) => None,
        };
        if let Some(err) = pollster::block_on(scope.pop()) {
            (nbody, nbody_error) = (None, Some(format!("the nbody kernel does not compile: {err}")));
        }
        let gpu = Gpu {
            name: name.to_owned(),
            model: adapter.info.name.clone(),
            device,
            queue,
            hash,
            sim,
            challenge,
            render,
            nbody,
            render_error: None,
            nbody_error,
            error,
            busy: Mutex::new(()),
        };
        hash::self_test(&gpu)
            .and_then(|()| sim::self_test(&gpu))
            .and_then(|()| challenge::self_test(&gpu))
            .map_err(|err| open_error(format!("the kernels fail their self-test: {err}")))?;
        let mut gpu = gpu;
        gpu.render_error = render::self_test(&gpu).err().map(|err| err.to_string());
        if gpu.nbody.is_some()
            && let Err(err) = nbody::self_test(&gpu)
        {
            gpu.nbody = None;
            gpu.nbody_error = Some(err.to_string());
        }
        Ok(gpu)
    }

    /// The device's name in the worker's list (`gpu0`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why render tiles go to the CPU on this device (its render kernel
    /// failed its self-test), or `None` when the kernel renders them.
    pub fn render_error(&self) -> Option<&str> {
        self.render_error.as_deref()
    }

    /// Why nbody windows go to the CPU on this device (it has no 64-bit
    /// floats, or its nbody kernel failed its self-test), or `None` when
    /// the kernel runs them.
    pub fn nbody_error(&self) -> Option<&str> {
        self.nbody_error.as_deref()
    }

    /// The adapter's model.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The sim kernel's 64-bit integer arithmetic (emulated on 32-bit
    /// words) run on the device for each pair, for checking against
    /// [`U64Ops::cpu`].
    pub fn sim_u64_ops(&self, pairs: &[(u64, u64)]) -> Result<Vec<U64Ops>, GpuError> {
        let _one_at_a_time = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        sim::u64_ops(self, pairs)
    }

    /// Waits for the work submitted so far.
    fn wait(&self) -> Result<(), GpuError> {
        self.device
            .poll(wgpu::PollType::Wait { submission_index: None, timeout: Some(BATCH_TIMEOUT) })
            .map_err(|err| GpuError::Device(format!("{}: waiting for the kernel: {err}", self.name)))?;
        self.check()
    }

    /// Waits for the queue, then reads a mapped buffer's words.
    fn read(&self, buffer: &wgpu::Buffer) -> Result<Vec<u32>, GpuError> {
        self.read_bytes(buffer, buffer.size())
    }

    /// Waits for the queue, then reads the first `bytes` of a mapped
    /// buffer as words.
    fn read_bytes(&self, buffer: &wgpu::Buffer, bytes: u64) -> Result<Vec<u32>, GpuError> {
        let (sender, receiver) = std::sync::mpsc::channel();
        buffer.slice(..bytes).map_async(wgpu::MapMode::Read, move |result| {
            let _ = sender.send(result);
        });
        self.device
            .poll(wgpu::PollType::Wait { submission_index: None, timeout: Some(BATCH_TIMEOUT) })
            .map_err(|err| GpuError::Device(format!("{}: waiting for the kernel: {err}", self.name)))?;
        self.check()?;
        receiver
            .try_recv()
            .map_err(|_| GpuError::Device(format!("{}: the read-back did not finish", self.name)))?
            .map_err(|err| GpuError::Device(format!("{}: read back the kernel's results: {err}", self.name)))?;
        let words = {
            let view = buffer
                .slice(..bytes)
                .get_mapped_range()
                .map_err(|err| GpuError::Device(format!("{}: read back the kernel's results: {err}", self.name)))?;
            bytemuck::cast_slice::<u8, u32>(&view).to_vec()
        };
        buffer.unmap();
        Ok(words)
    }

    /// The device's first error, if it reported one.
    fn check(&self) -> Result<(), GpuError> {
        match self.error.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            Some(err) => Err(GpuError::Device(format!("{}: {err}", self.name))),
            None => Ok(()),
        }
    }
}

impl Accelerator for Gpu {
    fn device(&self) -> &str {
        &self.name
    }

    fn hash_search(&self, search: &HashSearch<'_>) -> Result<Option<HashFinds>, AccelError> {
        // A search that panicked left nothing shared behind but the lock.
        let _one_at_a_time = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        hash::search(self, search).map_err(|err| AccelError { device: self.name.clone(), message: err.to_string() })
    }

    fn sim_blocks(&self, task: &SimKernelTask) -> Result<Option<Vec<SimBlock>>, AccelError> {
        let _one_at_a_time = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        sim::blocks(self, task).map_err(|err| AccelError { device: self.name.clone(), message: err.to_string() })
    }

    fn render_tile(
        &self,
        task: &iog_workloads::render::kernel::RenderKernelTask,
    ) -> Result<Option<Vec<u8>>, AccelError> {
        if self.render_error.is_some() {
            return Ok(None);
        }
        let _one_at_a_time = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        render::tile(self, task).map_err(|err| AccelError { device: self.name.clone(), message: err.to_string() })
    }

    fn nbody_states(
        &self,
        task: &iog_workloads::NbodyKernelTask,
    ) -> Result<Option<Vec<iog_workloads::NbodyState>>, AccelError> {
        if self.nbody.is_none() {
            return Ok(None);
        }
        let _one_at_a_time = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        nbody::states(self, task).map_err(|err| AccelError { device: self.name.clone(), message: err.to_string() })
    }

    fn challenge_rows(
        &self,
        products: &[iog_trust::compute::ProductSpec],
        keep_going: &(dyn Fn() -> bool + Sync),
    ) -> Result<Option<Vec<Vec<iog_trust::Hash>>>, AccelError> {
        let _one_at_a_time = self.busy.lock().unwrap_or_else(PoisonError::into_inner);
        challenge::row_hashes(self, products, keep_going)
            .map_err(|err| AccelError { device: self.name.clone(), message: err.to_string() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gpu(name: &str, source: &str, model: &str) -> Device {
        Device {
            kind: DeviceKind::Gpu,
            name: name.to_owned(),
            vendor: "NVIDIA".to_owned(),
            model: model.to_owned(),
            memory_bytes: 80 << 30,
            compute_units: 132,
            source: source.to_owned(),
            driver: None,
            compute_capability: None,
            uuid: None,
            kernels: false,
        }
    }

    fn seen(vendor_id: u32, pci: &str, model: &str) -> Seen {
        Seen { vendor_id, pci: PciAddress::parse(pci), device: gpu("", "wgpu-vulkan", model) }
    }

    #[test]
    fn pci_addresses_compare_by_their_numbers() {
        assert_eq!(PciAddress::parse("00000000:1A:00.0"), PciAddress::parse("0000:1a:00.0"));
        assert_ne!(PciAddress::parse("0000:1a:00.0"), PciAddress::parse("0000:1b:00.0"));
        for bad in ["", "1a:00.0", "0000:1a:00", "0000:1a:00.0:1", "zz:1a:00.0"] {
            assert_eq!(PciAddress::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_gpu_both_nvml_and_wgpu_see_counts_once_and_others_are_added() {
        let mut devices = vec![gpu("gpu0", "nvml", "NVIDIA H100"), gpu("gpu1", "nvml", "NVIDIA H100")];
        let pci = HashMap::from([
            ("gpu0".to_owned(), "00000000:01:00.0".to_owned()),
            ("gpu1".to_owned(), "00000000:41:00.0".to_owned()),
        ]);
        let names = merge_seen(
            &mut devices,
            &pci,
            vec![
                seen(NVIDIA, "0000:41:00.0", "NVIDIA H100 80GB HBM3"),
                seen(0x1002, "0000:c1:00.0", "AMD Radeon RX 7900 XTX"),
                seen(NVIDIA, "0000:01:00.0", "NVIDIA H100 80GB HBM3"),
            ],
        );
        assert_eq!(names, [Some("gpu1".to_owned()), Some("gpu2".to_owned()), Some("gpu0".to_owned())]);
        let listed: Vec<(&str, &str)> = devices.iter().map(|d| (d.name.as_str(), d.model.as_str())).collect();
        assert_eq!(listed, [("gpu0", "NVIDIA H100"), ("gpu1", "NVIDIA H100"), ("gpu2", "AMD Radeon RX 7900 XTX")]);
    }

    #[test]
    fn nvidia_adapters_without_an_address_match_only_an_unambiguous_model() {
        let mut devices = vec![gpu("gpu0", "nvml", "A"), gpu("gpu1", "nvml", "B"), gpu("gpu2", "nvml", "B")];
        let names = merge_seen(
            &mut devices,
            &HashMap::new(),
            vec![seen(NVIDIA, "", "B"), seen(NVIDIA, "", "A"), seen(NVIDIA, "", "A")],
        );
        // "B" could be either of two GPUs: a device of its own. The second
        // "A" is a second view of gpu0, already taken.
        assert_eq!(names, [Some("gpu3".to_owned()), Some("gpu0".to_owned()), None]);
        assert_eq!(devices.len(), 4);
        assert_eq!(devices[3].source, "wgpu-vulkan");
    }

    #[test]
    fn two_adapters_at_one_address_are_one_gpu() {
        let mut devices = vec![gpu("gpu0", "nvml", "A")];
        let pci = HashMap::from([("gpu0".to_owned(), "00000000:01:00.0".to_owned())]);
        let names =
            merge_seen(&mut devices, &pci, vec![seen(NVIDIA, "0000:01:00.0", "A"), seen(NVIDIA, "0000:01:00.0", "A")]);
        assert_eq!(names, [Some("gpu0".to_owned()), None]);
        assert_eq!(devices.len(), 1);
    }
}
