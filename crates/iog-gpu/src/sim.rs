//! The sim workload's Monte Carlo samples as wgpu compute kernels.
//!
//! Each invocation draws a run of consecutive samples of one block (the
//! CPU's random numbers, from 64-bit integer arithmetic emulated on 32-bit
//! words) and sums their values and squares in `f32`; the host adds the
//! runs of each block in `f64`. A block's runs never straddle another
//! block, so a block's sums are its own samples'. Batches of runs grow
//! until one takes [`BATCH_TARGET`], as the hash search's do. A slab
//! invocation steps at most [`STEP_BUDGET`] collisions a dispatch, and a
//! batch whose runs are not all done is dispatched again (they go on
//! where they stopped).
//!
//! Precision: the kernels compute in `f32` and the CPU in `f64`, so blocks
//! agree within [`iog_workloads::Tolerance`], not bit for bit. What can be
//! made exact is: the random integers, the slab's scatter-or-absorb test
//! (compared on the integers), the reduction of `cos(2πu)`'s argument
//! (done in turns) and `−ln u` as `u` nears 1 (from `1 − u`, exact on the
//! integers). The host folds constants in `f64` (the option's `−σ²T/2`,
//! `σ√T`, and its strike discounted and over the spot, so the kernel's
//! values stay far from `f32`'s range limits).
//!
//! An option's value `growth − strike` is known in `f32` only to some
//! 10⁻⁷ of the growth: a path barely in the money may be off by much of
//! itself, and a block whose few paths in the money are barely so (a deep
//! out-of-the-money option, or blocks of a few samples) could be off by
//! more than the tolerance. From each block's sums and its count of paths
//! in or near the money, the host bounds the error; where the bound passes
//! half the tolerance, the block runs again listing those paths, and the
//! host computes them in `f64` (the others are worth 0 on both sides).

use std::time::{Duration, Instant};

use iog_workloads::sim::{SIM_BLOCKS, SLAB_COLLISIONS_MAX, mix, sim_sample};
use iog_workloads::{SimBlock, SimKernelTask, SimModel};
use wgpu::util::DeviceExt;

use crate::{Gpu, GpuError};

/// Invocations per workgroup of the sample kernels, as the shader declares.
const WORKGROUP: u32 = 256;
/// Invocations per workgroup of the arithmetic check, as the shader declares.
const CHECK_WORKGROUP: u32 = 64;
/// Most workgroups in one dispatch (wgpu's default limit is 65535); with
/// 12 bytes per run, a batch's partials then take at most 96 MiB.
const GROUPS_MAX: u32 = 32_768;
/// Most samples one invocation sums.
const RUN_MAX: u64 = 256;
/// Runs each block is cut into at least, where blocks are long enough: a
/// small task still spreads over some thousands of invocations.
const RUNS_PER_BLOCK_MIN: u64 = 1024;
/// How long a batch should take once sizes have grown.
const BATCH_TARGET: Duration = Duration::from_millis(100);
/// Numbers one sample may draw: three per slab collision.
const NUMBERS_MAX: u32 = 3 * SLAB_COLLISIONS_MAX;
/// Most loop iterations of one slab invocation in one dispatch: Mesa's
/// llvmpipe stops a shader after 65535 in all. A particle takes at most
/// [`SLAB_COLLISIONS_MAX`], so each dispatch ends some.
const STEP_BUDGET: u32 = 32_768;
const _: () = assert!(STEP_BUDGET > SLAB_COLLISIONS_MAX && STEP_BUDGET < 65_535);

/// Paths whose growth (see `sim.wgsl`) is at most this share of the
/// strike below it count as near the money: on the CPU they may be in it.
const NEAR_MONEY: f64 = 1.0 / 1024.0;
/// How far, relative to itself, the kernel's growth may be from the CPU's:
/// this (the exponential's, logarithm's, cosine's and square root's
/// errors)...
const GROWTH_ERROR: f64 = 1.5e-6;
/// ...and this share of the magnitudes summed into its exponent, which
/// `f32` rounds (`log_drift` and `vol_root_t · z`, large for a volatile
/// long option). The bound decides which blocks run again with their paths
/// in the money listed; it is checked at open.
const EXPONENT_ERROR: f64 = 4e-7;
/// The largest |z| a path can draw: `√(−2 ln 2⁻⁵³)`.
const Z_MAX: f64 = 8.58;
/// Most paths in or near the money that one block lists for the CPU; a
/// block with more keeps the kernel's sums (where so many pay, their
/// errors do not all lean one way, and the bound is far too pessimistic).
const LIST_MAX: u64 = 1 << 16;

/// The kernel's uniform parameters, laid out as `Params` in `sim.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    stream: [u32; 2],
    scatter: [u32; 2],
    first_run: u32,
    count: u32,
    runs_per_block: u32,
    run_len: u32,
    log_drift: f32,
    vol_root_t: f32,
    strike: f32,
    thickness: f32,
    money: f32,
    list: u32,
    pad: [u32; 2],
    blocks: [[u32; 4]; SIM_BLOCKS as usize],
}

fn words(value: u64) -> [u32; 2] {
    [value as u32, (value >> 32) as u32]
}

/// The compiled sample pipelines of one device, and the table of `mix(n)`
/// they draw numbers with.
pub(crate) struct SimKernels {
    layout: wgpu::BindGroupLayout,
    option: wgpu::ComputePipeline,
    slab: wgpu::ComputePipeline,
    u64_ops: wgpu::ComputePipeline,
    /// `mix(n)` for `n` in `0..=NUMBERS_MAX`, as (low, high) words.
    mixed: wgpu::Buffer,
}

impl SimKernels {
    pub(crate) fn new(device: &wgpu::Device) -> SimKernels {
        let source = [include_str!("u64.wgsl"), include_str!("sim.wgsl")]
            .concat()
            .replace("SLAB_COLLISIONS_MAX_VALUE", &format!("{SLAB_COLLISIONS_MAX}u"))
            .replace("STEP_BUDGET_VALUE", &format!("{STEP_BUDGET}u"));
        use wgpu::BufferBindingType::{Storage, Uniform};
        let writable = Storage { read_only: false };
        let bindings = [Uniform, Storage { read_only: true }, writable, writable, writable];
        let (layout, pipelines) =
            crate::compute_pipelines(device, "iog sim", source, &bindings, &["sim_option", "sim_slab", "u64_ops"]);
        let [option, slab, u64_ops] = <[wgpu::ComputePipeline; 3]>::try_from(pipelines).expect("three entry points");
        let table: Vec<u32> = (0..=u64::from(NUMBERS_MAX)).flat_map(|n| words(mix(n))).collect();
        let mixed = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("mix(n)"),
            contents: bytemuck::cast_slice(&table),
            usage: wgpu::BufferUsages::STORAGE,
        });
        SimKernels { option, slab, u64_ops, layout, mixed }
    }
}

/// How a task's batches are sized: `groups` workgroups at first, growing
/// while a batch is quick unless `fixed`; `run_len` samples per invocation
/// (by default from the block length).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sizing {
    pub(crate) groups: u32,
    pub(crate) run_len: Option<u32>,
    pub(crate) fixed: bool,
}

impl Sizing {
    /// A small first batch that grows: on a software adapter a workgroup
    /// of long runs can take tens of milliseconds.
    pub(crate) const GROWING: Sizing = Sizing { groups: 4, run_len: None, fixed: false };
}

/// A task as the kernel takes it.
struct Prepared {
    params: Params,
    /// What the host multiplies each block's sum by (and its sum of
    /// squares by the square): the option's spot.
    scale: f64,
    /// The option's strike as the kernel sees it (discounted, over the
    /// spot); 0 for a slab.
    strike: f64,
    /// How far the kernel's growth may be from the CPU's, relative to
    /// itself.
    growth_error: f64,
    runs_per_block: u64,
    total_runs: u64,
}

/// `None` for blocks too long for the kernel's 32-bit sample counts, which
/// the workload's limits (10¹⁰ samples a task) never give.
fn prepare(task: &SimKernelTask, sizing: Sizing) -> Option<Prepared> {
    let block_len = task.block_len.max(1);
    if block_len > u64::from(u32::MAX) - RUN_MAX {
        return None;
    }
    let run_len = match sizing.run_len {
        Some(run_len) => u64::from(run_len.max(1)),
        None => block_len.div_ceil(RUNS_PER_BLOCK_MIN).clamp(1, RUN_MAX),
    };
    // Runs are numbered over the task in 32 bits.
    let run_len = run_len.max(block_len.div_ceil(u64::from(u32::MAX) / SIM_BLOCKS));
    let runs_per_block = block_len.div_ceil(run_len);
    let mut blocks = [[0u32; 4]; SIM_BLOCKS as usize];
    for (block, slot) in blocks.iter_mut().enumerate() {
        let (start, end) = task.block_range(block as u64);
        let [lo, hi] = words(start);
        *slot = [lo, hi, (end - start) as u32, 0];
    }
    let mut params = Params {
        stream: words(task.stream),
        scatter: [0; 2],
        first_run: 0,
        count: 0,
        runs_per_block: runs_per_block as u32,
        run_len: run_len as u32,
        log_drift: 0.0,
        vol_root_t: 0.0,
        strike: 0.0,
        thickness: 0.0,
        money: 0.0,
        list: 0,
        pad: [0; 2],
        blocks,
    };
    let (mut scale, mut strike, mut growth_error) = (1.0, 0.0, 0.0);
    match task.model {
        SimModel::Option(option) => {
            // value = e^(−rT)·max(S·e^((r − σ²/2)T + σ√T·z) − K, 0)
            //       = S·max(e^(−σ²T/2 + σ√T·z) − K·e^(−rT)/S, 0)
            let (t, vol) = (option.maturity_years, option.volatility);
            strike = option.strike * (-option.rate * t).exp() / option.spot;
            params.log_drift = (-vol * vol * t / 2.0) as f32;
            params.vol_root_t = (vol * t.sqrt()) as f32;
            params.strike = strike as f32;
            growth_error = GROWTH_ERROR + EXPONENT_ERROR * (vol * vol * t / 2.0 + vol * t.sqrt() * Z_MAX);
            params.money = (strike * (1.0 - NEAR_MONEY.max(4.0 * growth_error)).max(0.0)) as f32;
            scale = option.spot;
        }
        SimModel::Slab(slab) => {
            params.thickness = slab.thickness as f32;
            // u > s exactly when (x >> 11) + 1 > s·2⁵³ (exact in f64).
            let threshold = (slab.scatter_ratio.clamp(0.0, 1.0) * (1u64 << 53) as f64).floor() as u64;
            params.scatter = words(threshold);
        }
    }
    Some(Prepared { params, scale, strike, growth_error, runs_per_block, total_runs: SIM_BLOCKS * runs_per_block })
}

/// A block's partial sums, in the kernel's units (the option's over its
/// spot).
#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    sum: f64,
    sum_sq: f64,
    /// Paths in or near the money.
    in_money: u64,
}

/// Runs a task's samples on `gpu`: its blocks' sums, in order.
pub(crate) fn blocks(gpu: &Gpu, task: &SimKernelTask) -> Result<Option<Vec<SimBlock>>, GpuError> {
    blocks_sized(gpu, task, Sizing::GROWING)
}

/// [`blocks`] with its batches sized by `sizing`.
pub(crate) fn blocks_sized(gpu: &Gpu, task: &SimKernelTask, sizing: Sizing) -> Result<Option<Vec<SimBlock>>, GpuError> {
    Ok(blocks_listing(gpu, task, sizing, true)?.map(|(blocks, _)| blocks))
}

/// [`blocks_sized`], running blocks again with their paths in or near the
/// money listed where that matters only if `list_near`; with the number of
/// blocks run again.
fn blocks_listing(
    gpu: &Gpu,
    task: &SimKernelTask,
    sizing: Sizing,
    list_near: bool,
) -> Result<Option<(Vec<SimBlock>, u64)>, GpuError> {
    let Some(prepared) = prepare(task, sizing) else { return Ok(None) };
    let mut sums = [Sums::default(); SIM_BLOCKS as usize];
    run_batches(gpu, task, &prepared, 0..prepared.total_runs, sizing, None, |run, sum, sum_sq, in_money| {
        let block = &mut sums[(run / prepared.runs_per_block) as usize];
        block.sum += f64::from(sum);
        block.sum_sq += f64::from(sum_sq);
        block.in_money += u64::from(in_money);
    })?;
    let relative = task.model.tolerance().relative;
    let scale = prepared.scale;
    let mut out = Vec::with_capacity(SIM_BLOCKS as usize);
    let mut listed = 0;
    for (block, sums) in sums.iter().enumerate() {
        let (start, end) = task.block_range(block as u64);
        let n = end - start;
        let (mut sum, mut sum_sq) = (sums.sum * scale, sums.sum_sq * scale * scale);
        if list_near && sums.in_money > 0 && sums.in_money <= LIST_MAX && error_matters(sums, n, &prepared, relative) {
            (sum, sum_sq) = in_money_listed(gpu, task, &prepared, block as u64, sums.in_money, sizing)?;
            listed += 1;
        }
        out.push(SimBlock { n, sum, sum_sq });
    }
    Ok(Some((out, listed)))
}

/// Whether the kernel's error could move a block's sums by more than half
/// the model's tolerance (`relative`): each path in or near the money is
/// off by at most the growth's error times its growth (its value plus the
/// strike), all perhaps the same way.
fn error_matters(sums: &Sums, n: u64, prepared: &Prepared, relative: f64) -> bool {
    let (error, strike) = (prepared.growth_error, prepared.strike);
    let growths = sums.sum + sums.in_money as f64 * strike;
    let sum_error = error * growths;
    // (w + Δw)² − w² = 2wΔw + Δw², with Σ w·growth = Σ w² + strike·Σ w.
    let sum_sq_error = 2.0 * error * (sums.sum_sq + strike * sums.sum)
        + error * error * (sums.sum_sq + 2.0 * strike * sums.sum + sums.in_money as f64 * strike * strike);
    sum_error > 0.5 * relative * (n as f64 * sums.sum_sq).sqrt() || sum_sq_error > 0.5 * relative * sums.sum_sq
}

/// Block `block` run again with its `in_money` paths in or near the money
/// listed, then computed on the CPU (in `f64`, as
/// [`SimKernelTask::cpu_block`] does; the others are worth 0): the block's
/// sums in the task's units.
fn in_money_listed(
    gpu: &Gpu,
    task: &SimKernelTask,
    prepared: &Prepared,
    block: u64,
    in_money: u64,
    sizing: Sizing,
) -> Result<(f64, f64), GpuError> {
    let device = &gpu.device;
    let bytes = (in_money + 1) * 4;
    let list = crate::new_buffer(device, "sim list", bytes, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    let readback = crate::new_buffer(
        device,
        "sim list readback",
        bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    let runs = block * prepared.runs_per_block..(block + 1) * prepared.runs_per_block;
    let mut unlisted = 0.0f64;
    run_batches(gpu, task, prepared, runs, sizing, Some(&list), |_, sum, sum_sq, _| {
        unlisted += f64::from(sum).abs() + f64::from(sum_sq).abs();
    })?;
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("sim list") });
    encoder.copy_buffer_to_buffer(&list, 0, &readback, 0, bytes);
    gpu.queue.submit([encoder.finish()]);
    let words = gpu.read(&readback)?;
    if u64::from(words[0]) != in_money || unlisted != 0.0 {
        return Err(GpuError::Device(format!(
            "{}: the sim kernel counted {in_money} paths in the money in block {block}, then listed {} and summed {unlisted}",
            gpu.name, words[0]
        )));
    }
    let (start, _) = task.block_range(block);
    let mut offsets = words[1..].to_vec();
    // Listed in no particular order: summed in the samples' order.
    offsets.sort_unstable();
    let (mut sum, mut sum_sq) = (0.0f64, 0.0f64);
    for offset in offsets {
        let value = sim_sample(&task.model, task.stream, start + u64::from(offset));
        sum += value;
        sum_sq += value * value;
    }
    Ok((sum, sum_sq))
}

/// Every sample of `task` one by one (one sample a run), in the kernel's
/// units (the option's over its spot): for measuring the kernel against
/// the CPU sample by sample.
pub(crate) fn samples(gpu: &Gpu, task: &SimKernelTask) -> Result<Vec<f64>, GpuError> {
    let sizing = Sizing { run_len: Some(1), ..Sizing::GROWING };
    let Some(prepared) = prepare(task, sizing).filter(|prepared| prepared.params.run_len == 1) else {
        return Err(GpuError::Device(format!("{}: too many samples to list one by one", gpu.name)));
    };
    let mut values = vec![0.0; task.samples as usize];
    run_batches(gpu, task, &prepared, 0..prepared.total_runs, sizing, None, |run, sum, _, _| {
        let index = run / prepared.runs_per_block * task.block_len + run % prepared.runs_per_block;
        if let Some(value) = values.get_mut(index as usize) {
            *value += f64::from(sum);
        }
    })?;
    Ok(values)
}

/// Dispatches runs `runs` of `prepared` in batches, handing each run's
/// number (over the task), sums and paths in or near the money to
/// `partial`. With `list`, those paths are listed there (a count, then
/// their offsets in their block) instead of summed.
fn run_batches(
    gpu: &Gpu,
    task: &SimKernelTask,
    prepared: &Prepared,
    runs: std::ops::Range<u64>,
    sizing: Sizing,
    list: Option<&wgpu::Buffer>,
    mut partial: impl FnMut(u64, f32, f32, u32),
) -> Result<(), GpuError> {
    let device = &gpu.device;
    let limits = device.limits();
    let groups_max = GROUPS_MAX
        .min(limits.max_compute_workgroups_per_dimension)
        .min((limits.max_storage_buffer_binding_size.min(limits.max_buffer_size) / (12 * u64::from(WORKGROUP))) as u32)
        .max(1);
    let batch_runs_max = (runs.end - runs.start).min(u64::from(groups_max * WORKGROUP)).max(1);
    let partial_bytes = batch_runs_max * 12;
    let (pipeline, slab) = match task.model {
        SimModel::Option(_) => (&gpu.sim.option, false),
        SimModel::Slab(_) => (&gpu.sim.slab, true),
    };
    let params_buffer = crate::new_buffer(
        device,
        "sim params",
        size_of::<Params>() as u64,
        wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
    );
    let partials = crate::new_buffer(
        device,
        "sim partials",
        partial_bytes,
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
    );
    let readback = crate::new_buffer(
        device,
        "sim partials readback",
        partial_bytes,
        wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
    );
    // Slab: the particles each run of the batch has left to follow.
    let progress = crate::new_buffer(
        device,
        "sim progress",
        if slab { batch_runs_max * 4 } else { 4 },
        wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
    );
    let listing = list.is_some();
    let unlisted;
    let list = match list {
        Some(list) => list,
        None => {
            unlisted = crate::new_buffer(device, "sim list (unused)", 4, wgpu::BufferUsages::STORAGE);
            &unlisted
        }
    };
    let bind_group = crate::bind_buffers(
        device,
        "iog sim",
        &gpu.sim.layout,
        &[&params_buffer, &gpu.sim.mixed, &partials, list, &progress],
    );

    let mut params = prepared.params;
    params.list = u32::from(listing);
    let mut groups = sizing.groups.clamp(1, groups_max);
    let mut done = runs.start;
    let mut left: Vec<u32> = Vec::new();
    while done < runs.end {
        let batch_max = u64::from(groups * WORKGROUP);
        let batch = batch_max.min(runs.end - done);
        params.first_run = done as u32;
        params.count = batch as u32;
        let started = Instant::now();
        gpu.queue.write_buffer(&params_buffer, 0, bytemuck::bytes_of(&params));
        left.clear();
        if slab {
            left.extend((done..done + batch).map(|run| run_samples(prepared, run)));
        }
        let mut first_dispatch = true;
        loop {
            let mut encoder =
                device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("sim batch") });
            if slab && first_dispatch {
                encoder.clear_buffer(&progress, 0, None);
            }
            first_dispatch = false;
            {
                let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                    label: Some("sim batch"),
                    timestamp_writes: None,
                });
                pass.set_pipeline(pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(batch.div_ceil(u64::from(WORKGROUP)) as u32, 1, 1);
            }
            encoder.copy_buffer_to_buffer(&partials, 0, &readback, 0, batch * 12);
            gpu.queue.submit([encoder.finish()]);
            let words = gpu.read_bytes(&readback, batch * 12)?;
            let mut unfinished = 0usize;
            for (j, run) in words.chunks_exact(3).enumerate() {
                if slab {
                    // The particles this dispatch followed to their end.
                    let Some(left) = left[j].checked_sub(run[2]) else {
                        return Err(GpuError::Device(format!(
                            "{}: the slab kernel followed {} particles of run {}, which has {} left",
                            gpu.name,
                            run[2],
                            done + j as u64,
                            left[j]
                        )));
                    };
                    unfinished += usize::from(left > 0);
                    partial(done + j as u64, f32::from_bits(run[0]), f32::from_bits(run[1]), 0);
                } else {
                    partial(done + j as u64, f32::from_bits(run[0]), f32::from_bits(run[1]), run[2]);
                }
            }
            if unfinished == 0 {
                break;
            }
            for (left, run) in left.iter_mut().zip(words.chunks_exact(3)) {
                *left -= run[2];
            }
        }
        done += batch;
        // Grow the batch while one takes well under the target.
        if !sizing.fixed && started.elapsed() * 4 < BATCH_TARGET && batch == batch_max && groups < groups_max {
            groups = (groups * 4).min(groups_max);
        }
    }
    Ok(())
}

/// Samples in run `run` (over the task) of `prepared`.
fn run_samples(prepared: &Prepared, run: u64) -> u32 {
    let block_len = prepared.params.blocks[(run / prepared.runs_per_block) as usize][2];
    let offset = (run % prepared.runs_per_block) as u32 * prepared.params.run_len;
    prepared.params.run_len.min(block_len - offset.min(block_len))
}

/// What the kernels' 64-bit arithmetic gives for one pair `(a, b)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct U64Ops {
    /// splitmix64's finaliser of `a`.
    pub mix: u64,
    /// `a · b`, wrapping.
    pub product: u64,
    /// `a + b`, wrapping.
    pub sum: u64,
    /// `(a >> 11) + 1`, the integer a uniform is drawn from.
    pub draw: u64,
}

impl U64Ops {
    /// The same operations on the CPU.
    pub fn cpu(a: u64, b: u64) -> U64Ops {
        U64Ops { mix: mix(a), product: a.wrapping_mul(b), sum: a.wrapping_add(b), draw: (a >> 11) + 1 }
    }
}

/// Runs the kernels' 64-bit arithmetic on each pair.
pub(crate) fn u64_ops(gpu: &Gpu, pairs: &[(u64, u64)]) -> Result<Vec<U64Ops>, GpuError> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let device = &gpu.device;
    let operands: Vec<u32> = pairs.iter().flat_map(|&(a, b)| [words(a), words(b)]).flatten().collect();
    let operands = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("u64 operands"),
        contents: bytemuck::cast_slice(&operands),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let mut params: Params = bytemuck::Zeroable::zeroed();
    params.count = pairs.len() as u32;
    let params_buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("u64 params"),
        contents: bytemuck::bytes_of(&params),
        usage: wgpu::BufferUsages::UNIFORM,
    });
    let bytes = pairs.len() as u64 * 4 * 8;
    let results =
        crate::new_buffer(device, "u64 results", bytes, wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    let readback =
        crate::new_buffer(device, "u64 readback", bytes, wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST);
    let unused = crate::new_buffer(device, "u64 unused", 4, wgpu::BufferUsages::STORAGE);
    let bind_group = crate::bind_buffers(
        device,
        "iog u64 ops",
        &gpu.sim.layout,
        &[&params_buffer, &operands, &results, &unused, &unused],
    );
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("u64 ops") });
    {
        let mut pass =
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("u64 ops"), timestamp_writes: None });
        pass.set_pipeline(&gpu.sim.u64_ops);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups((pairs.len() as u32).div_ceil(CHECK_WORKGROUP), 1, 1);
    }
    encoder.copy_buffer_to_buffer(&results, 0, &readback, 0, bytes);
    gpu.queue.submit([encoder.finish()]);
    let words = gpu.read(&readback)?;
    let word = |k: usize| u64::from(words[2 * k]) | (u64::from(words[2 * k + 1]) << 32);
    Ok((0..pairs.len())
        .map(|j| U64Ops { mix: word(4 * j), product: word(4 * j + 1), sum: word(4 * j + 2), draw: word(4 * j + 3) })
        .collect())
}

/// Values whose arithmetic carries between the 32-bit words, or does not.
pub(crate) const EDGES: [u64; 10] = [
    0,
    1,
    0xffff_ffff,
    1 << 32,
    0x0000_0001_ffff_ffff,
    0xffff_ffff_0000_0000,
    0x8000_0000_0000_0000,
    0x6176_8883_80b5_83eb,
    0x9E37_79B9_7F4A_7C15,
    u64::MAX,
];

/// Runs the 64-bit arithmetic on edge values and a small task of each
/// model (one in batches of a few runs of a few samples), every block
/// checked against the CPU within the model's tolerance; a device whose
/// kernels disagree is not used.
pub(crate) fn self_test(gpu: &Gpu) -> Result<(), GpuError> {
    let pairs: Vec<(u64, u64)> = EDGES.iter().flat_map(|&a| EDGES.iter().map(move |&b| (a, b))).collect();
    for (&(a, b), got) in pairs.iter().zip(u64_ops(gpu, &pairs)?) {
        if got != U64Ops::cpu(a, b) {
            return Err(GpuError::Device(format!(
                "{}: 64-bit arithmetic on {a:#x}, {b:#x} gives {got:x?}, the CPU {:x?}",
                gpu.name,
                U64Ops::cpu(a, b)
            )));
        }
    }
    let option = SimModel::Option(iog_workloads::sim::OptionModel::default());
    let slab = SimModel::Slab(iog_workloads::sim::SlabModel::default());
    let stream = 0x5eed_0000_0000_0001;
    // The growth within the bound that decides which blocks list their
    // paths in the money.
    let task = SimKernelTask { model: option, stream, samples: 4096, block_len: 64 };
    let prepared = prepare(&task, Sizing::GROWING).expect("a short task");
    for (i, got) in samples(gpu, &task)?.into_iter().enumerate() {
        let expected = sim_sample(&option, stream, i as u64) / prepared.scale;
        let error = (got - expected).abs() / (got.max(expected) + prepared.strike);
        if error.is_nan() || error > prepared.growth_error {
            return Err(GpuError::Device(format!(
                "{}: the option kernel's sample {i} is {got}, the CPU's {expected}: further apart than the {:.1e} \
                 its sums are held to",
                gpu.name, prepared.growth_error
            )));
        }
    }
    // Blocks in runs of a few samples, over several batches; blocks of two
    // samples, where paths in the money are listed for the CPU.
    let few = Sizing { groups: 1, run_len: Some(5), fixed: true };
    for (model, sizing, samples) in
        [(option, few, 3_000), (option, Sizing::GROWING, 128), (slab, Sizing::GROWING, 3_000), (slab, few, 3_000)]
    {
        let task = SimKernelTask { model, stream, samples, block_len: samples.div_ceil(SIM_BLOCKS) };
        let blocks = blocks_sized(gpu, &task, sizing)?.unwrap_or_default();
        if blocks.len() as u64 != SIM_BLOCKS {
            return Err(GpuError::Device(format!("{}: the sim kernel gives {} blocks", gpu.name, blocks.len())));
        }
        let tolerance = model.tolerance();
        for (block, got) in blocks.iter().enumerate() {
            let expected = task.cpu_block(block as u64);
            if !tolerance.blocks_agree(got, &expected) {
                return Err(GpuError::Device(format!(
                    "{}: {model:?} block {block} sums to {} ({}), the CPU {} ({})",
                    gpu.name, got.sum, got.sum_sq, expected.sum, expected.sum_sq
                )));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use iog_workloads::sim::{OptionModel, SlabModel};

    fn gpu() -> Option<Gpu> {
        let discovery = crate::discover(crate::DiscoverOptions { software: true });
        let Some(adapter) = discovery.adapters.first() else {
            assert!(std::env::var_os("IOG_REQUIRE_GPU_ADAPTER").is_none(), "IOG_REQUIRE_GPU_ADAPTER is set");
            return None;
        };
        Some(Gpu::open("gpu0", adapter).expect("the kernels compile"))
    }

    #[test]
    fn blocks_whose_paths_barely_pay_list_them_for_the_cpu() {
        let Some(gpu) = gpu() else { return };
        let default = OptionModel::default();
        let mut listed = 0;
        // Blocks of a few paths, and a deep out-of-the-money option whose
        // blocks hold a path or two in the money.
        for (model, block_len) in [(default, 2), (default, 10), (OptionModel { strike: 200.0, ..default }, 1_000)] {
            for stream in 0..4 {
                let model = SimModel::Option(model);
                let task = SimKernelTask { model, stream, samples: block_len * SIM_BLOCKS, block_len };
                let (blocks, relisted) = blocks_listing(&gpu, &task, Sizing::GROWING, true).unwrap().unwrap();
                listed += relisted;
                for (block, got) in blocks.iter().enumerate() {
                    let expected = task.cpu_block(block as u64);
                    assert!(model.tolerance().blocks_agree(got, &expected), "{got:?} {expected:?}");
                }
            }
        }
        assert!(listed > 0);
        // Blocks of many paths in the money need no list.
        let task = SimKernelTask { model: SimModel::Option(default), stream: 5, samples: 640_000, block_len: 10_000 };
        let (_, relisted) = blocks_listing(&gpu, &task, Sizing::GROWING, true).unwrap().unwrap();
        assert_eq!(relisted, 0);
    }

    #[test]
    fn long_walks_through_a_slab_take_several_dispatches_and_agree() {
        let Some(gpu) = gpu() else { return };
        // Pure scatterers in a thick slab walk some hundreds of collisions;
        // runs of 256 of them take more steps than one dispatch allows.
        let model = SimModel::Slab(SlabModel { thickness: 200.0, scatter_ratio: 1.0 });
        let task = SimKernelTask { model, stream: 7, samples: 64 * 1_000, block_len: 1_000 };
        let prepared = prepare(&task, Sizing { run_len: Some(256), ..Sizing::GROWING }).unwrap();
        let steps: u64 = (0..256).map(|i| slab_steps(&task, i)).sum();
        assert!(steps > u64::from(STEP_BUDGET), "{steps} steps");
        assert_eq!(prepared.params.run_len, 256);
        let blocks = blocks_sized(&gpu, &task, Sizing { run_len: Some(256), ..Sizing::GROWING }).unwrap().unwrap();
        for (block, got) in blocks.iter().enumerate() {
            let expected = task.cpu_block(block as u64);
            assert!(model.tolerance().blocks_agree(got, &expected), "block {block}: {got:?}, the CPU {expected:?}");
        }
    }

    /// The collisions sample `i` of a slab task goes through, on the CPU
    /// (as `SlabModel::sample` follows it, in f64).
    fn slab_steps(task: &SimKernelTask, i: u64) -> u64 {
        let SimModel::Slab(slab) = task.model else { unreachable!() };
        let key = mix(task.stream ^ i);
        let uniform = |n: u64| ((mix(key ^ mix(n)) >> 11) + 1) as f64 / (1u64 << 53) as f64;
        let (mut x, mut mu, mut n) = (0.0f64, 1.0f64, 0u64);
        for step in 1..=u64::from(SLAB_COLLISIONS_MAX) {
            n += 1;
            x += mu * -uniform(n).ln();
            if x >= slab.thickness || x < 0.0 {
                return step;
            }
            n += 1;
            if uniform(n) > slab.scatter_ratio {
                return step;
            }
            n += 1;
            mu = 2.0 * uniform(n) - 1.0;
        }
        u64::from(SLAB_COLLISIONS_MAX)
    }

    #[test]
    fn the_error_bound_leaves_blocks_of_many_paths_in_the_money_alone() {
        let task = SimKernelTask {
            model: SimModel::Option(OptionModel::default()),
            stream: 0,
            samples: 640_000,
            block_len: 10_000,
        };
        let prepared = prepare(&task, Sizing::GROWING).unwrap();
        // 10 000 paths, 46% in the money, as the default option's are.
        let busy = Sums { sum: 800.0, sum_sq: 240.0, in_money: 4_600 };
        assert!(!error_matters(&busy, 10_000, &prepared, 1e-4));
        // One path in the money, barely.
        let barely = Sums { sum: 1e-3, sum_sq: 1e-6, in_money: 1 };
        assert!(error_matters(&barely, 10_000, &prepared, 1e-4));
        // One path, well in the money.
        let well = Sums { sum: 0.5, sum_sq: 0.25, in_money: 1 };
        assert!(!error_matters(&well, 10_000, &prepared, 1e-4));
    }

    /// Block by block, over tasks of several sizes and streams and models
    /// from easy to hard: every block the kernel gives (with the paths near
    /// the strike listed for the CPU, as it ships) agrees with the CPU's
    /// within the model's tolerance. Prints, with `--nocapture`, how much
    /// of the tolerance was used with and without that listing (the plain
    /// `f32` kernel fails a few small blocks of hard options); `IOG_SIM_STREAMS` and `IOG_SIM_BLOCK_LENS`
    /// (comma-separated) make it larger (8 and 2,50,1000,20000 were
    /// measured for docs/BENCHMARKS.md).
    #[test]
    fn every_block_agrees_with_the_cpu_within_tolerance_across_models() {
        let Some(gpu) = gpu() else { return };
        let streams: u64 = std::env::var("IOG_SIM_STREAMS").map_or(2, |text| text.parse().unwrap());
        let block_lens: Vec<u64> = std::env::var("IOG_SIM_BLOCK_LENS")
            .map_or(vec![2, 50, 1_000], |text| text.split(',').map(|len| len.parse().unwrap()).collect());
        let default = OptionModel::default();
        let models = [
            SimModel::Option(default),
            SimModel::Option(OptionModel { strike: 200.0, ..default }),
            SimModel::Option(OptionModel { strike: 300.0, volatility: 0.3, ..default }),
            SimModel::Option(OptionModel { strike: 20.0, volatility: 0.8, maturity_years: 10.0, ..default }),
            SimModel::Option(OptionModel { volatility: 0.02, ..default }),
            SimModel::Option(OptionModel { strike: 1.0, volatility: 2.0, maturity_years: 20.0, ..default }),
            SimModel::Slab(SlabModel::default()),
            SimModel::Slab(SlabModel { thickness: 8.0, scatter_ratio: 0.5 }),
            SimModel::Slab(SlabModel { thickness: 12.0, scatter_ratio: 0.0 }),
            SimModel::Slab(SlabModel { thickness: 4.0, scatter_ratio: 0.95 }),
            SimModel::Slab(SlabModel { thickness: 30.0, scatter_ratio: 1.0 }),
        ];
        for model in models {
            for list_near in [false, true] {
                let tolerance = model.tolerance();
                let (mut worst_dev, mut worst_sq_dev, mut worst_used, mut worst_count) =
                    (0.0f64, 0.0f64, 0.0f64, 0.0f64);
                let (mut failed, mut blocks, mut relisted) = (0u64, 0u64, 0u64);
                for &block_len in &block_lens {
                    let samples = block_len * SIM_BLOCKS;
                    for stream in 0..streams {
                        let task = SimKernelTask { model, stream: mix(stream ^ block_len), samples, block_len };
                        let (got, listed) = blocks_listing(&gpu, &task, Sizing::GROWING, list_near).unwrap().unwrap();
                        relisted += listed;
                        for (block, got) in got.iter().enumerate() {
                            let expected = task.cpu_block(block as u64);
                            blocks += 1;
                            failed += u64::from(!tolerance.blocks_agree(got, &expected));
                            let sum_sq = got.sum_sq.max(expected.sum_sq);
                            let scale = (got.n as f64 * sum_sq).sqrt();
                            let (d_sum, d_sq) = ((got.sum - expected.sum).abs(), (got.sum_sq - expected.sum_sq).abs());
                            if scale > 0.0 {
                                worst_dev = worst_dev.max(d_sum / scale);
                                worst_sq_dev = worst_sq_dev.max(d_sq / sum_sq);
                            }
                            let turned = f64::from(tolerance.samples) * tolerance.sample_max;
                            let allowed_sum = tolerance.relative * scale + turned;
                            let allowed_sq = tolerance.relative * sum_sq + turned * tolerance.sample_max;
                            let used = |d: f64, allowed: f64| if d == 0.0 { 0.0 } else { d / allowed };
                            worst_used = worst_used.max(used(d_sum, allowed_sum)).max(used(d_sq, allowed_sq));
                            if matches!(model, SimModel::Slab(_)) {
                                worst_count = worst_count.max(d_sum);
                            }
                        }
                    }
                }
                eprintln!(
                    "{model:?} listing {list_near}: {blocks} blocks, {relisted} listed, {failed} outside tolerance; worst |Δsum|/√(n·Σx²) {worst_dev:.2e}, |Δsum_sq|/Σx² {worst_sq_dev:.2e}, tolerance used {worst_used:.3}{}",
                    if matches!(model, SimModel::Slab(_)) {
                        format!(", worst |Δcount| {worst_count}")
                    } else {
                        String::new()
                    }
                );
                if list_near {
                    assert_eq!(failed, 0, "{model:?}: {failed} of {blocks} blocks outside the tolerance");
                    assert!(worst_used < 0.5, "{model:?}: {worst_used} of the tolerance used");
                }
                if matches!(model, SimModel::Slab(_)) {
                    break;
                }
            }
        }
    }
}
