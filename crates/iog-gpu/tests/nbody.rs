//! The nbody kernel against its CPU twin (`NbodyKernelTask::cpu_states`),
//! on whatever adapter this machine has: software Vulkan (Mesa's
//! llvmpipe) in CI, a real GPU elsewhere. Whole windows run through the
//! workload with the kernel, chained, assembled and spot-checked as a
//! coordinator would. `IOG_REQUIRE_GPU_ADAPTER=1` makes a machine without
//! an adapter a failure rather than a skip; an adapter without 64-bit
//! floats skips the kernel and says so.

mod common;

use common::gpu;
use iog_gpu::Gpu;
use iog_workloads::nbody::state_off;
use iog_workloads::{Accelerator, DeviceChoice, NbodySpec, WorkloadSpec};

fn spec(initial: &str, particles: u32, windows: u64, steps_per_window: u64) -> NbodySpec {
    NbodySpec { particles, windows, steps_per_window, dt: 1e-3, softening: 0.01, seed: 11, initial: initial.to_owned() }
}

/// The GPU, where it has the nbody kernel.
fn nbody_gpu() -> Option<Gpu> {
    let gpu = gpu()?;
    if let Some(why) = gpu.nbody_error() {
        assert!(std::env::var_os("IOG_REQUIRE_NBODY_KERNEL").is_none(), "IOG_REQUIRE_NBODY_KERNEL is set but {why}");
        eprintln!("skipped: {} runs no nbody kernel: {why}", gpu.model());
        return None;
    }
    Some(gpu)
}

/// The largest difference between two states, relative to the state's
/// RMS radius (positions) and RMS speed (velocities).
fn largest_relative_difference(got: &iog_workloads::NbodyState, want: &iog_workloads::NbodyState) -> f64 {
    let worst = |got: &[[f64; 3]], want: &[[f64; 3]]| {
        let rms = (want.iter().flatten().map(|x| x * x).sum::<f64>() / want.len() as f64).sqrt();
        got.iter().flatten().zip(want.iter().flatten()).map(|(g, w)| (g - w).abs() / rms).fold(0.0f64, f64::max)
    };
    worst(&got.positions, &want.positions).max(worst(&got.velocities, &want.velocities))
}

#[test]
fn the_kernel_steps_plummer_spheres_and_discs_as_the_cpu_does_within_the_tolerance() {
    let Some(gpu) = nbody_gpu() else { return };
    for spec in [spec("plummer", 256, 1, 200), spec("disc", 100, 1, 160), spec("plummer", 3, 1, 7)] {
        let input = iog_workloads::plan_on(&WorkloadSpec::Nbody(spec.clone()), DeviceChoice::Gpu).unwrap().remove(0);
        let task = iog_workloads::nbody_kernel_task(&input).unwrap().expect("an nbody task");
        let got = gpu.nbody_states(&task).unwrap().expect("the kernel takes the system");
        let want = task.cpu_states(task.stops.len());
        assert_eq!(got.len(), task.stops.len());
        let mut worst = 0.0f64;
        let mut exact = 0;
        for ((stop, got), want) in task.stops.iter().zip(&got).zip(&want) {
            let off = state_off(&got.positions, &got.velocities, &want.positions, &want.velocities);
            assert_eq!(off, None, "{} of {}, after {stop} steps", spec.initial, spec.particles);
            worst = worst.max(largest_relative_difference(got, want));
            exact += usize::from(got == want);
        }
        eprintln!(
            "{} of {} particles, {} steps: {exact} of {} states bit for bit the CPU's, largest difference {worst:e} \
             of the RMS radius or speed",
            spec.initial,
            spec.particles,
            spec.steps_per_window,
            task.stops.len()
        );
    }
}

#[test]
fn windows_run_on_the_kernel_chain_assemble_and_pass_the_cpu_s_spot_checks() {
    let Some(gpu) = nbody_gpu() else { return };
    let spec = spec("plummer", 128, 3, 48);
    let workload = WorkloadSpec::Nbody(spec.clone());
    let mut inputs = iog_workloads::plan_on(&workload, DeviceChoice::Gpu).unwrap();
    let mut outputs = Vec::new();
    for window in 0..3 {
        let ran = iog_workloads::run_task_on(&inputs[window], Some(&gpu)).unwrap();
        assert_eq!((ran.device.as_deref(), &ran.accel_error), (Some("gpu0"), &None), "window {window}");
        let cpu = iog_workloads::run_task(&inputs[window]).unwrap().output;
        assert!(iog_workloads::outputs_agree(&inputs[window], &ran.run.output, &cpu).unwrap());
        for seed in 0..3 {
            let spot = iog_workloads::spot_check(&inputs[window], &ran.run.output, seed).unwrap();
            assert!(spot.passed, "window {window}: {}", spot.detail);
        }
        if window < 2 {
            let next = iog_workloads::next_input(&workload, window as u64 + 1, &inputs[window], &ran.run.output);
            inputs.push(next.unwrap());
        }
        outputs.push(ran.run.output);
    }
    let artifacts = iog_workloads::assemble(&workload, &outputs, &[1; 3]).unwrap();
    let result: serde_json::Value = serde_json::from_slice(&artifacts[0].bytes).unwrap();
    let drift = result["max_relative_drift"].as_f64().unwrap();
    assert!(drift < 1e-4, "the energy drifts by {drift}");
}
