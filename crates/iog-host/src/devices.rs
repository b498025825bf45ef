//! Finding the compute devices a worker can offer: the CPU always, NVIDIA
//! GPUs through NVML where a driver is installed.

mod cpu;
mod nvml;

use std::collections::HashSet;

use iog_types::Device;

/// What discovery found, with notes on paths that found nothing or found
/// less than usual (e.g. "nvml: libnvidia-ml.so.1 could not be loaded ...").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryReport {
    /// Every device found, the CPU first, each GPU once.
    pub devices: Vec<Device>,
    /// Human-readable notes, each starting with the discovery path it
    /// concerns (`cpu:`, `nvml:`), for the worker to log or show.
    pub notes: Vec<String>,
    /// The PCI address of each GPU NVML found, by device name (`gpu0` →
    /// `00000000:01:00.0`), so other views of the same GPU (wgpu's) can be
    /// matched to it.
    pub pci_bus_ids: std::collections::HashMap<String, String>,
}

/// Discover compute devices on this host.
///
/// The CPU is always reported as `cpu0`. NVIDIA GPUs come from NVML, which is
/// loaded at run time: on a host without the driver discovery still works and
/// the report carries a note instead of GPUs. Nothing here fails; every
/// problem becomes a note.
pub fn discover_devices() -> DiscoveryReport {
    let mut notes = Vec::new();
    let cpu = cpu::discover(&mut notes);
    let mut pci_bus_ids = std::collections::HashMap::new();
    let gpus = nvml::discover(&mut notes, &mut pci_bus_ids);
    let devices = merge_devices(vec![vec![cpu], gpus]);
    for device in &devices {
        tracing::debug!(
            name = %device.name,
            model = %device.model,
            memory_bytes = device.memory_bytes,
            compute_units = device.compute_units,
            source = %device.source,
            "found device"
        );
    }
    for note in &notes {
        tracing::debug!(note = %note, "device discovery note");
    }
    DiscoveryReport { devices, notes, pci_bus_ids }
}

/// Concatenate device lists from several discovery paths, dropping any device
/// whose uuid was already seen (compared ignoring ASCII case and surrounding
/// whitespace), so that one GPU seen by two paths counts once. The first
/// sighting wins, so list the most informative path first. Devices without a
/// uuid are always kept. Order is otherwise preserved.
pub fn merge_devices(lists: Vec<Vec<Device>>) -> Vec<Device> {
    let mut seen_uuids = HashSet::new();
    let mut merged = Vec::new();
    for device in lists.into_iter().flatten() {
        let seen_before =
            device.uuid.as_deref().is_some_and(|uuid| !seen_uuids.insert(uuid.trim().to_ascii_lowercase()));
        if !seen_before {
            merged.push(device);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use iog_types::DeviceKind;

    use super::*;

    fn gpu(name: &str, source: &str, uuid: Option<&str>) -> Device {
        Device {
            kind: DeviceKind::Gpu,
            name: name.to_owned(),
            vendor: "NVIDIA".to_owned(),
            model: "Test GPU".to_owned(),
            memory_bytes: 1 << 30,
            compute_units: 10,
            source: source.to_owned(),
            driver: None,
            compute_capability: None,
            uuid: uuid.map(str::to_owned),
            kernels: false,
        }
    }

    fn names(devices: &[Device]) -> Vec<(&str, &str)> {
        devices.iter().map(|d| (d.name.as_str(), d.source.as_str())).collect()
    }

    #[test]
    fn merge_drops_repeated_uuids_and_keeps_order() {
        let merged = merge_devices(vec![
            vec![gpu("cpu0", "cpu", None), gpu("gpu0", "nvml", Some("GPU-aaa")), gpu("gpu1", "nvml", Some("GPU-bbb"))],
            vec![
                gpu("gpu0", "other", Some("gpu-BBB ")),
                gpu("gpu1", "other", Some("GPU-ccc")),
                gpu("x", "other", None),
                gpu("y", "other", Some("GPU-aaa")),
            ],
        ]);
        assert_eq!(
            names(&merged),
            [("cpu0", "cpu"), ("gpu0", "nvml"), ("gpu1", "nvml"), ("gpu1", "other"), ("x", "other")]
        );
    }

    #[test]
    fn merge_keeps_every_device_without_uuid() {
        let merged = merge_devices(vec![vec![gpu("a", "cpu", None)], vec![gpu("a", "cpu", None)]]);
        assert_eq!(merged.len(), 2);
        assert!(merge_devices(Vec::new()).is_empty());
    }
}
