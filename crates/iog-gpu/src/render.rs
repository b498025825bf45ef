//! The render workload's path tracer as a wgpu kernel (`render.wgsl`):
//! one invocation per pixel of a tile, tracing the CPU's paths with the
//! CPU's `f32` arithmetic and random numbers. Rounding on a GPU can send a
//! path another way, so a tile agrees with the CPU's within a PSNR bound
//! (`iog_workloads::render::kernel`). A device whose kernel fails its
//! self-test at open keeps its other kernels and leaves tiles to the CPU.

use iog_workloads::render::kernel::{PRIMITIVE_FLOATS, RenderKernelTask, SURFACE_FLOATS};

use crate::{Gpu, GpuError};

const WORKGROUP: u32 = 64;
/// Paths (pixels × samples) one dispatch traces at most in a scene of up
/// to 16 primitives (proportionally fewer in a larger one): a few
/// milliseconds on a GPU, so no dispatch runs long enough for a driver to
/// call the device hung, and each is waited for in turn.
const PATHS_PER_DISPATCH: u64 = 1 << 20;
/// Where the surfaces start in the tables: after the 255 gamma thresholds.
const SURFACES_AT: u32 = 256;

/// The kernel's uniform parameters, laid out as `Params` in `render.wgsl`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    rect: [u32; 4],
    samples_per_pixel: u32,
    max_bounces: u32,
    n_primitives: u32,
    n_lights: u32,
    seed: [u32; 2],
    sample0: u32,
    sample1: u32,
    surfaces_at: u32,
    lights_at: u32,
    pad: [u32; 2],
    background: [f32; 4],
    camera: [[f32; 4]; 6],
}

pub(crate) struct RenderKernels {
    layout: wgpu::BindGroupLayout,
    render: wgpu::ComputePipeline,
}

impl RenderKernels {
    pub(crate) fn new(device: &wgpu::Device) -> RenderKernels {
        let source = [include_str!("render.wgsl"), include_str!("u64.wgsl")].concat();
        use wgpu::BufferBindingType::{Storage, Uniform};
        let read = Storage { read_only: true };
        let write = Storage { read_only: false };
        let (layout, mut pipelines) =
            crate::compute_pipelines(device, "iog render", source, &[Uniform, read, read, write, write], &["render"]);
        RenderKernels { layout, render: pipelines.remove(0) }
    }
}

/// Renders the task's tile: RGB8 rows. `Ok(None)` when the device cannot
/// hold it.
pub(crate) fn tile(gpu: &Gpu, task: &RenderKernelTask) -> Result<Option<Vec<u8>>, GpuError> {
    tile_in_dispatches(gpu, task, PATHS_PER_DISPATCH)
}

/// [`tile`] with at most `paths_per_dispatch` paths (at least one sample of
/// every pixel) a dispatch.
fn tile_in_dispatches(
    gpu: &Gpu,
    task: &RenderKernelTask,
    paths_per_dispatch: u64,
) -> Result<Option<Vec<u8>>, GpuError> {
    let [_, _, width, height] = task.rect;
    let n_pixels = u64::from(width) * u64::from(height);
    if n_pixels == 0 || task.samples_per_pixel == 0 {
        return Err(GpuError::Device(format!(
            "{}: a tile of {width}x{height} pixels, {} samples",
            gpu.name, task.samples_per_pixel
        )));
    }
    let device = &gpu.device;
    let limits = device.limits();
    let binding_max = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
    let mut primitives: Vec<f32> = task.primitives.iter().flatten().copied().collect();
    if primitives.is_empty() {
        // No binding may be empty; the kernel reads none of it.
        primitives.resize(PRIMITIVE_FLOATS, 0.0);
    }
    let mut tables: Vec<f32> = task.gamma.to_vec();
    tables.resize(SURFACES_AT as usize, 0.0);
    tables.extend(task.surfaces.iter().flatten());
    let lights_at = tables.len() as u32;
    debug_assert_eq!(lights_at as usize, SURFACES_AT as usize + task.surfaces.len() * SURFACE_FLOATS);
    for &(idx, cumulative) in &task.lights {
        tables.extend([idx as f32, cumulative]);
    }
    let groups = n_pixels.div_ceil(u64::from(WORKGROUP));
    let state_bytes = n_pixels * 20;
    if groups > u64::from(limits.max_compute_workgroups_per_dimension)
        || state_bytes > binding_max
        || (primitives.len() * 4) as u64 > binding_max
        || (tables.len() * 4) as u64 > binding_max
    {
        return Ok(None);
    }
    let storage = |label: &str, contents: &[u8]| {
        wgpu::util::DeviceExt::create_buffer_init(
            device,
            &wgpu::util::BufferInitDescriptor { label: Some(label), contents, usage: wgpu::BufferUsages::STORAGE },
        )
    };
    let primitives = storage("render primitives", bytemuck::cast_slice(&primitives));
    let tables = storage("render tables", bytemuck::cast_slice(&tables));
    let state = crate::new_buffer(device, "render state", state_bytes, wgpu::BufferUsages::STORAGE);
    let pixels = crate::new_buffer(
        device,
        "render pixels",
        n_pixels * 4,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    );
    let readback = crate::new_buffer(
        device,
        "render pixels readback",
        n_pixels * 4,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    let params_buffer = crate::new_buffer(
        device,
        "render params",
        size_of::<Params>() as u64,
        wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    );
    let bind_group = crate::bind_buffers(
        device,
        "iog render",
        &gpu.render.layout,
        &[&params_buffer, &primitives, &tables, &state, &pixels],
    );
    let mut camera = task.camera;
    camera[0][3] = task.lens_radius;
    camera[1][3] = task.image_width;
    camera[2][3] = task.image_height;
    let mut params = Params {
        rect: task.rect,
        samples_per_pixel: task.samples_per_pixel,
        max_bounces: task.max_bounces,
        n_primitives: task.primitives.len() as u32,
        n_lights: task.lights.len() as u32,
        seed: [task.seed as u32, (task.seed >> 32) as u32],
        surfaces_at: SURFACES_AT,
        lights_at,
        background: [task.background[0], task.background[1], task.background[2], task.light_area],
        camera,
        ..Params::default()
    };
    // Each path tests every primitive at each bounce: fewer paths a
    // dispatch in a large scene.
    let paths_per_dispatch = paths_per_dispatch.saturating_mul(16) / (task.primitives.len() as u64).max(16);
    let per_dispatch = (paths_per_dispatch / n_pixels).clamp(1, u64::from(task.samples_per_pixel)) as u32;
    let mut sample0 = 0;
    while sample0 < task.samples_per_pixel {
        params.sample0 = sample0;
        params.sample1 = sample0.saturating_add(per_dispatch).min(task.samples_per_pixel);
        gpu.queue.write_buffer(&params_buffer, 0, bytemuck::bytes_of(&params));
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("render") });
        {
            let mut pass = encoder
                .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("render"), timestamp_writes: None });
            pass.set_pipeline(&gpu.render.render);
            pass.set_bind_group(0, &bind_group, &[]);
            pass.dispatch_workgroups(groups as u32, 1, 1);
        }
        if params.sample1 == task.samples_per_pixel {
            encoder.copy_buffer_to_buffer(&pixels, 0, &readback, 0, n_pixels * 4);
        }
        gpu.queue.submit([encoder.finish()]);
        sample0 = params.sample1;
        if sample0 < task.samples_per_pixel {
            // Each dispatch gets the whole batch timeout, not the tile.
            gpu.wait()?;
        }
    }
    let words = gpu.read(&readback)?;
    Ok(Some(words.iter().flat_map(|word| [*word as u8, (word >> 8) as u8, (word >> 16) as u8]).collect()))
}

/// Most of the self-test tile's 64 pixels that may be more than
/// `PIXEL_LEVELS_MAX` from the CPU's (a path a rounding sent another way).
const SELF_TEST_PIXELS_OFF_MAX: usize = 2;

/// A tile of the demo scene (planes, a triangle light, glass, metal and
/// diffuse balls), one sample a dispatch, against the CPU at open. A
/// failure leaves render tiles to the CPU; the other kernels stay.
pub(crate) fn self_test(gpu: &Gpu) -> Result<(), GpuError> {
    let (task, cpu) = demo_tile();
    let got = tile_in_dispatches(gpu, &task, 1)?
        .ok_or_else(|| GpuError::Device(format!("{}: the render kernel does not take an 8x8 tile", gpu.name)))?;
    let off = iog_workloads::render::kernel::pixels_off(&got, &cpu);
    if off > SELF_TEST_PIXELS_OFF_MAX {
        return Err(GpuError::Device(format!(
            "{}: {off} of the render kernel's 64 test pixels are off the CPU's (at most {SELF_TEST_PIXELS_OFF_MAX} may be)",
            gpu.name
        )));
    }
    Ok(())
}

/// An 8×8 tile of the demo scene at 4 samples a pixel, and the CPU's bytes.
fn demo_tile() -> (RenderKernelTask, Vec<u8>) {
    let mut spec = iog_workloads::demo_job().render.expect("the demo job renders");
    (spec.width, spec.height, spec.tile_size, spec.samples_per_pixel) = (8, 8, 8, 4);
    let input = iog_workloads::plan(&iog_workloads::WorkloadSpec::Render(spec)).expect("the demo plans").remove(0);
    let task = iog_workloads::render_kernel_task(&input).expect("a render task decodes").expect("a render task");
    (task, iog_workloads::run_task(&input).expect("the demo tile renders").output)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cutting_a_tile_into_dispatches_changes_no_byte() {
        let discovery = crate::discover(crate::DiscoverOptions { software: true });
        let Some(adapter) = discovery.adapters.first() else {
            assert!(std::env::var_os("IOG_REQUIRE_GPU_ADAPTER").is_none(), "IOG_REQUIRE_GPU_ADAPTER is set");
            return;
        };
        let gpu = Gpu::open("gpu0", adapter).expect("the kernels compile");
        let (task, _) = demo_tile();
        let whole = tile_in_dispatches(&gpu, &task, u64::MAX).unwrap().unwrap();
        for paths in [1, 64, 130] {
            assert_eq!(tile_in_dispatches(&gpu, &task, paths).unwrap().unwrap(), whole, "{paths} paths a dispatch");
        }
    }
}
