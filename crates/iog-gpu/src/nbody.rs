//! The `nbody` workload's leapfrog steps as a wgpu kernel (`nbody.wgsl`):
//! one invocation per particle, in `f64`. It needs an adapter with 64-bit
//! floats (`wgpu::Features::SHADER_F64`: Vulkan's `shaderFloat64`, most
//! desktop GPUs and llvmpipe, not Metal); elsewhere windows run on the
//! CPU. A GPU's division and square root need not round as the CPU's do,
//! so a window agrees with the CPU's within
//! [`iog_workloads::NBODY_GPU_RELATIVE_ERROR`] (checked by the workload).

use iog_workloads::{NBODY_GPU_RELATIVE_ERROR, NbodyKernelTask, NbodyState};

use crate::{Gpu, GpuError};

const WORKGROUP: u32 = 64;
/// Pairwise interactions one submission computes at most (about 0.5 s on
/// llvmpipe, milliseconds on a GPU), so no submission runs long enough for
/// a driver to call the device hung.
const INTERACTIONS_PER_SUBMIT: u64 = 1 << 26;

pub(crate) struct NbodyKernels {
    layout: wgpu::BindGroupLayout,
    forces: wgpu::ComputePipeline,
    kick_drift: wgpu::ComputePipeline,
    kick: wgpu::ComputePipeline,
}

impl NbodyKernels {
    /// The kernels, on a device opened with 64-bit floats; `None` on one
    /// without.
    pub(crate) fn new(device: &wgpu::Device) -> Option<NbodyKernels> {
        if !device.features().contains(wgpu::Features::SHADER_F64) {
            return None;
        }
        use wgpu::BufferBindingType::Storage;
        let read = Storage { read_only: true };
        let write = Storage { read_only: false };
        let (layout, mut pipelines) = crate::compute_pipelines(
            device,
            "iog nbody",
            include_str!("nbody.wgsl").to_owned(),
            &[read, write, write, write],
            &["forces", "kick_drift", "kick"],
        );
        let kick = pipelines.pop()?;
        let kick_drift = pipelines.pop()?;
        let forces = pipelines.pop()?;
        Some(NbodyKernels { layout, forces, kick_drift, kick })
    }
}

/// Runs the task's steps: the state after each of its stops. `Ok(None)`
/// when the device has no nbody kernel or cannot hold the system.
pub(crate) fn states(gpu: &Gpu, task: &NbodyKernelTask) -> Result<Option<Vec<NbodyState>>, GpuError> {
    states_in_submits(gpu, task, INTERACTIONS_PER_SUBMIT)
}

/// [`states`] with at most `interactions_per_submit` pairwise interactions
/// (and at least one step) a submission.
fn states_in_submits(
    gpu: &Gpu,
    task: &NbodyKernelTask,
    interactions_per_submit: u64,
) -> Result<Option<Vec<NbodyState>>, GpuError> {
    let Some(kernels) = &gpu.nbody else { return Ok(None) };
    let n = task.masses.len();
    if n == 0
        || task.positions.len() != n
        || task.velocities.len() != n
        || task.stops.first() == Some(&0)
        || task.stops.windows(2).any(|pair| pair[0] >= pair[1])
    {
        return Err(GpuError::Device(format!(
            "{}: an nbody task of {n} masses, {} positions, {} velocities and stops {:?}",
            gpu.name,
            task.positions.len(),
            task.velocities.len(),
            task.stops
        )));
    }
    let device = &gpu.device;
    let limits = device.limits();
    let binding_max = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
    let vector_bytes = (n * 3 * 8) as u64;
    let groups = n.div_ceil(WORKGROUP as usize) as u64;
    if vector_bytes + 32 > binding_max || groups > u64::from(limits.max_compute_workgroups_per_dimension) {
        return Ok(None);
    }
    let storage = |label: &str, contents: &[u8], usage: wgpu::BufferUsages| {
        wgpu::util::DeviceExt::create_buffer_init(
            device,
            &wgpu::util::BufferInitDescriptor { label: Some(label), contents, usage },
        )
    };
    let flat = |vectors: &[[f64; 3]]| -> Vec<f64> { vectors.iter().flatten().copied().collect() };
    let params: Vec<f64> =
        [task.dt, 0.5 * task.dt, task.eps2, 0.0].into_iter().chain(task.masses.iter().copied()).collect();
    let params = storage("nbody params", bytemuck::cast_slice(&params), wgpu::BufferUsages::STORAGE);
    let vectors = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC;
    let positions = storage("nbody positions", bytemuck::cast_slice(&flat(&task.positions)), vectors);
    let velocities = storage("nbody velocities", bytemuck::cast_slice(&flat(&task.velocities)), vectors);
    let accelerations = crate::new_buffer(device, "nbody accelerations", vector_bytes, wgpu::BufferUsages::STORAGE);
    let readback = crate::new_buffer(
        device,
        "nbody readback",
        2 * vector_bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    let bind_group =
        crate::bind_buffers(device, "iog nbody", &kernels.layout, &[&params, &positions, &velocities, &accelerations]);
    let groups = groups as u32;
    let encode = |first: bool, steps: u64, stop: bool| {
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("nbody") });
        {
            let mut pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("nbody"), timestamp_writes: None });
            pass.set_bind_group(0, &bind_group, &[]);
            if first {
                // The accelerations at the start.
                pass.set_pipeline(&kernels.forces);
                pass.dispatch_workgroups(groups, 1, 1);
            }
            for _ in 0..steps {
                for pipeline in [&kernels.kick_drift, &kernels.forces, &kernels.kick] {
                    pass.set_pipeline(pipeline);
                    pass.dispatch_workgroups(groups, 1, 1);
                }
            }
        }
        if stop {
            encoder.copy_buffer_to_buffer(&positions, 0, &readback, 0, vector_bytes);
            encoder.copy_buffer_to_buffer(&velocities, 0, &readback, vector_bytes, vector_bytes);
        }
        gpu.queue.submit([encoder.finish()]);
    };
    let n2 = (n as u64) * (n as u64);
    let steps_per_submit = (interactions_per_submit / n2).max(1);
    let mut first = true;
    let mut done = 0;
    let mut states = Vec::with_capacity(task.stops.len());
    for &stop in &task.stops {
        while done < stop {
            let steps = (stop - done).min(steps_per_submit);
            done += steps;
            encode(first, steps, done == stop);
            first = false;
            if done < stop {
                // Each submission gets the whole batch timeout.
                gpu.wait()?;
            }
        }
        let words = gpu.read(&readback)?;
        let numbers: Vec<f64> =
            words.chunks_exact(2).map(|pair| f64::from_bits(u64::from(pair[0]) | (u64::from(pair[1]) << 32))).collect();
        let vectors = |numbers: &[f64]| -> Vec<[f64; 3]> {
            numbers.chunks_exact(3).map(|xyz| [xyz[0], xyz[1], xyz[2]]).collect()
        };
        let (x, v) = numbers.split_at(3 * n);
        states.push(NbodyState { positions: vectors(x), velocities: vectors(v) });
    }
    Ok(Some(states))
}

/// A Plummer sphere of 64 particles, 12 steps read back at every segment,
/// against the CPU at open. A failure leaves nbody windows to the CPU; the
/// other kernels stay.
pub(crate) fn self_test(gpu: &Gpu) -> Result<(), GpuError> {
    let task = self_test_task();
    let got = states_in_submits(gpu, &task, 64 * 64 * 5)?
        .ok_or_else(|| GpuError::Device(format!("{}: the nbody kernel does not take 64 particles", gpu.name)))?;
    let want = task.cpu_states(task.stops.len());
    for ((stop, got), want) in task.stops.iter().zip(&got).zip(&want) {
        if let Some(off) =
            iog_workloads::nbody::state_off(&got.positions, &got.velocities, &want.positions, &want.velocities)
        {
            return Err(GpuError::Device(format!(
                "{}: after {stop} steps the nbody kernel is more than {NBODY_GPU_RELATIVE_ERROR:e} off the CPU: {off}",
                gpu.name
            )));
        }
    }
    Ok(())
}

fn self_test_task() -> NbodyKernelTask {
    let spec = iog_workloads::NbodySpec {
        particles: 64,
        windows: 1,
        steps_per_window: 12,
        dt: 1e-3,
        softening: 0.01,
        seed: 1,
        initial: "plummer".to_owned(),
    };
    let input = iog_workloads::plan_on(&iog_workloads::WorkloadSpec::Nbody(spec), iog_workloads::DeviceChoice::Gpu)
        .expect("the self-test system plans")
        .remove(0);
    iog_workloads::nbody_kernel_task(&input).expect("an nbody task decodes").expect("an nbody task")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_a_window_into_submissions_changes_no_bit() {
        let discovery = crate::discover(crate::DiscoverOptions { software: true });
        let Some(adapter) = discovery.adapters.first() else {
            assert!(std::env::var_os("IOG_REQUIRE_GPU_ADAPTER").is_none(), "IOG_REQUIRE_GPU_ADAPTER is set");
            return;
        };
        let gpu = Gpu::open("gpu0", adapter).expect("the kernels compile");
        if gpu.nbody.is_none() {
            eprintln!("skipping: {} runs no nbody kernel: {:?}", adapter.model(), gpu.nbody_error());
            return;
        }
        let task = self_test_task();
        let whole = states_in_submits(&gpu, &task, u64::MAX).unwrap().unwrap();
        for interactions in [1, 64 * 64 * 2, 64 * 64 * 7] {
            assert_eq!(states_in_submits(&gpu, &task, interactions).unwrap().unwrap(), whole, "{interactions}");
        }
    }
}
