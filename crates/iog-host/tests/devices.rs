//! Device discovery on the machine running the tests.

use iog_host::discover_devices;
use iog_types::DeviceKind;

#[test]
fn finds_the_cpu_and_explains_missing_gpus() {
    let report = discover_devices();
    let cpu = report.devices.first().expect("the cpu is always found");
    assert_eq!(cpu.kind, DeviceKind::Cpu);
    assert_eq!(cpu.name, "cpu0");
    assert_eq!(cpu.source, "cpu");
    assert!(cpu.compute_units >= 1, "{cpu:?}");
    assert!(!cpu.model.is_empty(), "{cpu:?}");
    if cfg!(target_os = "linux") {
        assert!(cpu.memory_bytes > 0, "{cpu:?}");
    }
    assert_eq!(report.devices.iter().filter(|d| d.kind == DeviceKind::Cpu).count(), 1);

    let gpus: Vec<_> = report.devices.iter().filter(|d| d.kind == DeviceKind::Gpu).collect();
    if gpus.is_empty() {
        // Without GPUs the report says why, so an operator is not left guessing.
        assert!(report.notes.iter().any(|note| note.starts_with("nvml:")), "{:?}", report.notes);
    }
    for (gpu_idx, gpu) in gpus.iter().enumerate() {
        assert_eq!(gpu.source, "nvml");
        assert_eq!(gpu.vendor, "NVIDIA");
        assert!(gpu.name.starts_with("gpu"), "{gpu:?}");
        assert!(gpu.uuid.is_some(), "{gpu:?}");
        assert!(gpus[..gpu_idx].iter().all(|other| other.uuid != gpu.uuid), "each gpu once");
    }
}
