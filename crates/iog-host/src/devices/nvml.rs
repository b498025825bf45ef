//! NVIDIA GPUs through NVML. nvml-wrapper loads libnvidia-ml at run time, so
//! this builds and runs on hosts without the driver; there it finds nothing
//! and says why in a note.

use iog_types::{Device, DeviceKind};
use nvml_wrapper::Nvml;
use nvml_wrapper::error::NvmlError;

/// Most GPUs looked at on one host. NVML reports what the driver sees, so
/// this only guards against a broken driver returning a nonsense count.
const GPUS_MAX: u32 = 64;

/// Every GPU NVML can describe, named `gpu<NVML index>`, with its PCI
/// address in `pci_bus_ids` where NVML gives one. A GPU NVML cannot
/// open is left out with a note; a property it cannot read gets a fallback
/// (and a note when the fallback makes the GPU less useful).
pub(super) fn discover(
    notes: &mut Vec<String>,
    pci_bus_ids: &mut std::collections::HashMap<String, String>,
) -> Vec<Device> {
    let nvml = match Nvml::init() {
        Ok(nvml) => nvml,
        Err(err) => {
            notes.push(init_failure_note(&err));
            return Vec::new();
        }
    };
    let n_gpus = match nvml.device_count() {
        Ok(n) => n,
        Err(err) => {
            notes.push(format!("nvml: could not count GPUs ({err}); no NVIDIA GPUs offered"));
            return Vec::new();
        }
    };
    if n_gpus == 0 {
        notes.push("nvml: the NVIDIA driver reports no GPUs".to_owned());
        return Vec::new();
    }
    if n_gpus > GPUS_MAX {
        notes.push(format!("nvml: the driver reports {n_gpus} GPUs; looking at the first {GPUS_MAX}"));
    }
    let driver = nvml.sys_driver_version().ok();

    let mut gpus = Vec::new();
    for gpu_idx in 0..n_gpus.min(GPUS_MAX) {
        let name = format!("gpu{gpu_idx}");
        let gpu = match nvml.device_by_index(gpu_idx) {
            Ok(gpu) => gpu,
            Err(err) => {
                notes.push(format!("nvml: could not open {name} ({err}); it is not offered"));
                continue;
            }
        };
        let memory_bytes = match gpu.memory_info() {
            Ok(info) => info.total,
            Err(err) => {
                notes.push(format!("nvml: memory size of {name} unknown ({err}); offering 0 bytes"));
                0
            }
        };
        // The attributes query is the only place NVML gives the number of
        // streaming multiprocessors; older drivers and some GPUs lack it.
        let compute_units = gpu.attributes().map_or(0, |attributes| attributes.multiprocessor_count);
        if let Ok(pci) = gpu.pci_info() {
            pci_bus_ids.insert(name.clone(), pci.bus_id);
        }
        gpus.push(Device {
            kind: DeviceKind::Gpu,
            name,
            vendor: "NVIDIA".to_owned(),
            model: gpu.name().unwrap_or_else(|_| "unknown NVIDIA GPU".to_owned()),
            memory_bytes,
            compute_units,
            source: "nvml".to_owned(),
            driver: driver.clone(),
            compute_capability: gpu.cuda_compute_capability().ok().map(|cc| format!("{}.{}", cc.major, cc.minor)),
            uuid: gpu.uuid().ok(),
            // Set by the worker once its GPU kernels run on it.
            kernels: false,
        });
    }
    gpus
}

/// Why NVML could not start, in words an operator can act on.
fn init_failure_note(err: &NvmlError) -> String {
    match err {
        NvmlError::LibloadingError(err) => format!(
            "nvml: libnvidia-ml.so not found ({err}); no NVIDIA GPUs offered \
             (install the NVIDIA driver to offer GPUs)"
        ),
        NvmlError::DriverNotLoaded => "nvml: the NVIDIA driver is not loaded; no NVIDIA GPUs offered".to_owned(),
        NvmlError::NoPermission => {
            "nvml: no permission to talk to the NVIDIA driver; no NVIDIA GPUs offered".to_owned()
        }
        err => format!("nvml: could not start ({err}); no NVIDIA GPUs offered"),
    }
}
