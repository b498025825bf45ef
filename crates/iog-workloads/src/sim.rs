//! The `sim` workload: Monte Carlo simulation split into independent tasks,
//! combined into one estimate with a confidence interval.
//!
//! Models:
//! - `option`: the price of a European call under geometric Brownian motion
//!   (the payoff `max(S_T − K, 0)` discounted at the risk-free rate), with
//!   the Black–Scholes price beside it to check against;
//! - `slab`: the share of particles that pass through a slab `thickness`
//!   mean free paths thick, each collision scattering them isotropically
//!   with probability `scatter_ratio` and absorbing them otherwise (for a
//!   pure absorber the answer is `e^−thickness`).
//!
//! Every sample draws its random numbers from (seed, task, sample index)
//! alone, through a counter-based generator, so a task's result does not
//! depend on how its samples are spread over threads, and the maths uses
//! `libm` (pure Rust, so the same bits on every machine, where the
//! platform's C library may differ between versions): replicas agree bit
//! for bit. A task's output holds partial
//! sums of [`SIM_BLOCKS`] blocks of its samples, so a spot check recomputes
//! a few blocks rather than the whole task.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::accel::{AccelError, Accelerator, DeviceChoice, Ran};
use crate::spot::Spot;
use crate::task::MAX_TASKS;
use crate::{Artifact, AssembleError, SpecError, TaskRun, check};

/// Blocks a task's samples are summed in (and spot-checked by).
pub const SIM_BLOCKS: u64 = 64;
/// Blocks a spot check recomputes: a sixteenth of the task.
pub const SIM_SPOT_BLOCKS: u64 = 4;
/// Most samples one task may draw.
pub const SIM_SAMPLES_PER_TASK_MAX: u64 = 10_000_000_000;
/// Most collisions one slab particle is followed through before it counts
/// as absorbed (a particle that scatters this often has as good as stopped).
pub const SLAB_COLLISIONS_MAX: u32 = 10_000;
/// The two-sided 95% quantile of the normal distribution.
const Z95: f64 = 1.959_963_984_540_054;

/// Parameters of the `sim` workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimSpec {
    /// `option` or `slab`.
    pub model: String,
    /// Tasks, each with its own samples (1 to 1000000).
    pub tasks: u64,
    /// Samples each task draws (1 to 10¹⁰).
    pub samples_per_task: u64,
    /// Seed of every random number (default 0).
    #[serde(default)]
    pub seed: u64,
    /// Parameters of the `option` model (defaults when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub option: Option<OptionModel>,
    /// Parameters of the `slab` model (defaults when left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slab: Option<SlabModel>,
}

/// A European call option on a stock following geometric Brownian motion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionModel {
    /// The stock's price now (default 100).
    #[serde(default = "default_spot")]
    pub spot: f64,
    /// The strike price (default 105).
    #[serde(default = "default_strike")]
    pub strike: f64,
    /// The risk-free rate per year, continuously compounded (default 0.05).
    #[serde(default = "default_rate")]
    pub rate: f64,
    /// The volatility per √year (default 0.2).
    #[serde(default = "default_volatility")]
    pub volatility: f64,
    /// Years to expiry (default 1).
    #[serde(default = "default_maturity")]
    pub maturity_years: f64,
}

fn default_spot() -> f64 {
    100.0
}
fn default_strike() -> f64 {
    105.0
}
fn default_rate() -> f64 {
    0.05
}
fn default_volatility() -> f64 {
    0.2
}
fn default_maturity() -> f64 {
    1.0
}

impl Default for OptionModel {
    fn default() -> OptionModel {
        OptionModel {
            spot: default_spot(),
            strike: default_strike(),
            rate: default_rate(),
            volatility: default_volatility(),
            maturity_years: default_maturity(),
        }
    }
}

impl OptionModel {
    /// The Black–Scholes price of the call.
    pub fn black_scholes(&self) -> f64 {
        let (s, k, r, v, t) = (self.spot, self.strike, self.rate, self.volatility, self.maturity_years);
        let d1 = (libm::log(s / k) + (r + v * v / 2.0) * t) / (v * libm::sqrt(t));
        let d2 = d1 - v * libm::sqrt(t);
        s * normal_cdf(d1) - k * libm::exp(-r * t) * normal_cdf(d2)
    }

    fn validate(&self) -> Result<(), SpecError> {
        for (field, value, min, max) in [
            ("sim.option.spot", self.spot, 1e-9, 1e12),
            ("sim.option.strike", self.strike, 1e-9, 1e12),
            ("sim.option.rate", self.rate, -1.0, 1.0),
            ("sim.option.volatility", self.volatility, 1e-6, 10.0),
            ("sim.option.maturity_years", self.maturity_years, 1e-6, 100.0),
        ] {
            if !(value.is_finite() && (min..=max).contains(&value)) {
                return Err(SpecError::invalid(field, format!("must be between {min} and {max}, got {value}")));
            }
        }
        Ok(())
    }

    /// The discounted payoff of one path.
    fn sample(&self, rng: &mut Counter) -> f64 {
        let z = rng.normal();
        let t = self.maturity_years;
        let drift = (self.rate - self.volatility * self.volatility / 2.0) * t;
        let price = self.spot * libm::exp(drift + self.volatility * libm::sqrt(t) * z);
        libm::exp(-self.rate * t) * (price - self.strike).max(0.0)
    }
}

/// A slab of matter particles enter head-on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlabModel {
    /// Thickness in mean free paths (default 2).
    #[serde(default = "default_thickness")]
    pub thickness: f64,
    /// Chance that a collision scatters rather than absorbs (default 0.5).
    #[serde(default = "default_scatter_ratio")]
    pub scatter_ratio: f64,
}

fn default_thickness() -> f64 {
    2.0
}
fn default_scatter_ratio() -> f64 {
    0.5
}

impl Default for SlabModel {
    fn default() -> SlabModel {
        SlabModel { thickness: default_thickness(), scatter_ratio: default_scatter_ratio() }
    }
}

impl SlabModel {
    /// The exact answer where one is known: `e^−thickness` for a pure absorber.
    pub fn exact(&self) -> Option<f64> {
        (self.scatter_ratio == 0.0).then(|| libm::exp(-self.thickness))
    }

    fn validate(&self) -> Result<(), SpecError> {
        if !(self.thickness.is_finite() && (0.0..=1_000.0).contains(&self.thickness)) {
            return Err(SpecError::invalid(
                "sim.slab.thickness",
                format!("must be between 0 and 1000 mean free paths, got {}", self.thickness),
            ));
        }
        if !(self.scatter_ratio.is_finite() && (0.0..=1.0).contains(&self.scatter_ratio)) {
            return Err(SpecError::invalid(
                "sim.slab.scatter_ratio",
                format!("must be between 0 and 1, got {}", self.scatter_ratio),
            ));
        }
        Ok(())
    }

    /// 1 when the particle gets through, 0 when it is absorbed or reflected.
    fn sample(&self, rng: &mut Counter) -> f64 {
        let (mut x, mut mu) = (0.0f64, 1.0f64);
        for _ in 0..SLAB_COLLISIONS_MAX {
            x += mu * -libm::log(rng.open01());
            if x >= self.thickness {
                return 1.0;
            }
            if x < 0.0 || rng.open01() > self.scatter_ratio {
                return 0.0;
            }
            mu = 2.0 * rng.open01() - 1.0;
        }
        0.0
    }
}

/// The model a task runs, with its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum SimModel {
    /// A European call option.
    Option(OptionModel),
    /// Particles through a slab.
    Slab(SlabModel),
}

impl SimModel {
    fn sample(&self, rng: &mut Counter) -> f64 {
        match self {
            SimModel::Option(model) => model.sample(rng),
            SimModel::Slab(model) => model.sample(rng),
        }
    }
}

impl SimSpec {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), SpecError> {
        check::between("sim.tasks", self.tasks, 1, MAX_TASKS)?;
        check::between("sim.samples_per_task", self.samples_per_task, 1, SIM_SAMPLES_PER_TASK_MAX)?;
        match self.model.as_str() {
            "option" if self.slab.is_some() => {
                Err(SpecError::invalid("sim.slab", "is set but sim.model is \"option\"; remove [sim.slab]"))
            }
            "slab" if self.option.is_some() => {
                Err(SpecError::invalid("sim.option", "is set but sim.model is \"slab\"; remove [sim.option]"))
            }
            "option" | "slab" => self.model().map(|_| ()),
            other => Err(SpecError::invalid("sim.model", format!("must be option or slab; got {other:?}"))),
        }
    }

    fn model(&self) -> Result<SimModel, SpecError> {
        match self.model.as_str() {
            "option" => {
                let model = self.option.unwrap_or_default();
                model.validate()?;
                Ok(SimModel::Option(model))
            }
            _ => {
                let model = self.slab.unwrap_or_default();
                model.validate()?;
                Ok(SimModel::Slab(model))
            }
        }
    }
}

/// The input of one sim task.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SimTask {
    model: SimModel,
    seed: u64,
    task_idx: u64,
    samples: u64,
    /// The job asked for a GPU: a worker with a sim kernel runs the task
    /// there, and its output agrees with the CPU's within
    /// [`SimModel::tolerance`] rather than bit for bit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    gpu: bool,
}

impl SimTask {
    pub(crate) fn wants_gpu(&self) -> bool {
        self.gpu
    }

    /// How far its results may differ: the model's tolerance when it asked
    /// for a GPU (whose kernels sum in `f32`), none (bit for bit) when not.
    pub(crate) fn tolerance(&self) -> Option<Tolerance> {
        self.gpu.then(|| self.model.tolerance())
    }

    /// The task as a kernel sees it.
    fn kernel(&self) -> SimKernelTask {
        SimKernelTask {
            model: self.model,
            stream: stream_of(self.seed, self.task_idx),
            samples: self.samples,
            block_len: self.samples.div_ceil(SIM_BLOCKS),
        }
    }
}

/// One block's partial sums: samples, their sum and their sum of squares.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SimBlock {
    /// Samples in the block.
    pub n: u64,
    /// Their sum.
    pub sum: f64,
    /// The sum of their squares.
    pub sum_sq: f64,
}

/// A sim task for a kernel: [`SIM_BLOCKS`] blocks of `block_len` samples
/// (the last ones shorter or empty), block `b` holding samples
/// `b·block_len .. min((b+1)·block_len, samples)`.
///
/// Sample `i` draws its numbers as [`sim_sample`] does: the key
/// `mix(stream ^ i)`, then the `n`th number (from `n = 1`) is
/// `mix(key ^ mix(n))` with [`mix`] splitmix64's finaliser; a number `x`
/// becomes a uniform in (0, 1] as `((x >> 11) + 1) · 2⁻⁵³` (a kernel in
/// `f32` may take `((x >> 40) + 1) · 2⁻²⁴`). A kernel computes in its own
/// precision: its blocks must agree with the CPU's within
/// [`SimModel::tolerance`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SimKernelTask {
    /// The model and its parameters.
    pub model: SimModel,
    /// The task's random stream.
    pub stream: u64,
    /// Samples in the task, at least 1.
    pub samples: u64,
    /// Samples per block: `samples.div_ceil(SIM_BLOCKS)`.
    pub block_len: u64,
}

impl SimKernelTask {
    /// Samples `start..end` of block `block`.
    pub fn block_range(&self, block: u64) -> (u64, u64) {
        ((block * self.block_len).min(self.samples), ((block + 1) * self.block_len).min(self.samples))
    }

    /// Block `block` computed on the CPU, in `f64`: the reference a kernel
    /// is held to.
    pub fn cpu_block(&self, block: u64) -> SimBlock {
        let (start, end) = self.block_range(block);
        let mut out = SimBlock { n: end - start, sum: 0.0, sum_sq: 0.0 };
        for i in start..end {
            let value = sim_sample(&self.model, self.stream, i);
            out.sum += value;
            out.sum_sq += value * value;
        }
        out
    }
}

/// Sample `i` of the random stream `stream` under `model`, on the CPU.
pub fn sim_sample(model: &SimModel, stream: u64, i: u64) -> f64 {
    let mut rng = Counter { key: mix(stream ^ i), n: 0 };
    model.sample(&mut rng)
}

/// How far two results of one block may differ and still count as the
/// same result: kernels on different devices compute in other precisions
/// (`f32`, their own `exp` and `log`), so sim outputs are compared within
/// this bound, not by digest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Largest difference of the sums, relative to `√(n · Σx²)` (which is
    /// at least `Σ|x|`): a bound on the relative error of the block's mean.
    pub relative: f64,
    /// Samples whose outcome may differ outright (a particle that stops a
    /// rounding error short of the far side), each worth at most
    /// `sample_max`.
    pub samples: u32,
    /// The largest a sample can be, for models whose samples are bounded.
    pub sample_max: f64,
}

impl SimModel {
    /// How far honest results of this model may differ between devices.
    ///
    /// - `option`: sums within 10⁻⁴ of `√(n · Σx²)`; a path's payoff is a
    ///   smooth function of its draws, so `f32` moves each by about 10⁻⁶ of
    ///   itself.
    /// - `slab`: particles get through or not, so a rounding error can turn
    ///   a whole sample: 10⁻³ relative, plus 2 particles in a block.
    ///
    /// Only tasks that asked for a GPU are compared within it; the CPU path
    /// is bit-exact, and CPU tasks agree bit for bit.
    pub fn tolerance(&self) -> Tolerance {
        match self {
            SimModel::Option(_) => Tolerance { relative: 1e-4, samples: 0, sample_max: 0.0 },
            SimModel::Slab(_) => Tolerance { relative: 1e-3, samples: 2, sample_max: 1.0 },
        }
    }
}

impl Tolerance {
    /// Whether two results of one block agree: the same count, and sums
    /// and sums of squares within the bound.
    pub fn blocks_agree(&self, a: &SimBlock, b: &SimBlock) -> bool {
        if a.n != b.n {
            return false;
        }
        let finite = |block: &SimBlock| block.sum.is_finite() && block.sum_sq.is_finite() && block.sum_sq >= 0.0;
        if !(finite(a) && finite(b)) {
            return false;
        }
        let sum_sq = a.sum_sq.max(b.sum_sq);
        let turned = f64::from(self.samples) * self.sample_max;
        let scale = (a.n as f64 * sum_sq).sqrt();
        (a.sum - b.sum).abs() <= self.relative * scale + turned
            && (a.sum_sq - b.sum_sq).abs() <= self.relative * sum_sq + turned * self.sample_max
    }
}

/// A task's output: its blocks' partial sums, in order, as JSON (serde_json
/// with `float_roundtrip`, so a spot check reads back the very bits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SimOutput {
    blocks: Vec<SimBlock>,
}

pub(crate) fn plan(spec: &SimSpec, device: DeviceChoice) -> Result<Vec<SimTask>, SpecError> {
    spec.validate()?;
    let model = spec.model()?;
    let gpu = device == DeviceChoice::Gpu;
    Ok((0..spec.tasks)
        .map(|task_idx| SimTask { model, seed: spec.seed, task_idx, samples: spec.samples_per_task, gpu })
        .collect())
}

/// The random stream of task `task_idx` of a job seeded `seed`.
fn stream_of(seed: u64, task_idx: u64) -> u64 {
    mix(mix(seed) ^ task_idx.wrapping_mul(0xD6E8_FEB8_6659_FD93))
}

fn run_block(task: &SimTask, block: u64) -> SimBlock {
    task.kernel().cpu_block(block)
}

fn check_samples(task: &SimTask) -> Result<(), SpecError> {
    if task.samples == 0 || task.samples > SIM_SAMPLES_PER_TASK_MAX {
        return Err(SpecError::invalid("sim.samples_per_task", "is out of range in this task input"));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) fn run(task: &SimTask) -> Result<TaskRun, SpecError> {
    Ok(run_on(task, None)?.run)
}

/// Runs the task on `accel`'s sim kernel where the task asks for a GPU and
/// the device has one, else on the CPU. A kernel's blocks are checked
/// before they are taken: all of them for their counts and finite sums,
/// one (drawn from the task) recomputed on the CPU within the model's
/// tolerance, for a sixty-fourth of the task's work.
pub(crate) fn run_on(task: &SimTask, accel: Option<&dyn Accelerator>) -> Result<Ran, SpecError> {
    check_samples(task)?;
    let mut accel_error = None;
    if let Some(accel) = accel.filter(|_| task.gpu) {
        let kernel = task.kernel();
        let checked = accel.sim_blocks(&kernel).and_then(|blocks| match blocks {
            Some(blocks) => check_kernel_blocks(task, &blocks).map(|()| Some(blocks)).map_err(|message| AccelError {
                device: accel.device().to_owned(),
                message: format!("its sim kernel's answer does not check out: {message}"),
            }),
            None => Ok(None),
        });
        match checked {
            Ok(Some(blocks)) => {
                let output = serde_json::to_vec(&SimOutput { blocks }).expect("sums serialize");
                let run = TaskRun { output, work_units: task.samples };
                return Ok(Ran { run, device: Some(accel.device().to_owned()), accel_error: None });
            }
            Ok(None) => {}
            Err(err) => accel_error = Some(err),
        }
    }
    let blocks: Vec<SimBlock> = (0..SIM_BLOCKS).into_par_iter().map(|block| run_block(task, block)).collect();
    let output = serde_json::to_vec(&SimOutput { blocks }).expect("sums serialize");
    Ok(Ran { run: TaskRun { output, work_units: task.samples }, device: None, accel_error })
}

/// Checks a kernel's blocks: [`SIM_BLOCKS`] of them, each with its count
/// and plausible sums, and one recomputed on the CPU within tolerance.
fn check_kernel_blocks(task: &SimTask, blocks: &[SimBlock]) -> Result<(), String> {
    if blocks.len() as u64 != SIM_BLOCKS {
        return Err(format!("it gives {} blocks, not {SIM_BLOCKS}", blocks.len()));
    }
    if let Some(block) = (0..SIM_BLOCKS).find(|block| !block_plausible(task, *block, &blocks[*block as usize])) {
        return Err(format!("block {block} has the wrong count or sums that are not finite"));
    }
    let block = mix(task.seed ^ task.task_idx ^ 0x5EED) % SIM_BLOCKS;
    let expected = run_block(task, block);
    let got = blocks[block as usize];
    if !task.model.tolerance().blocks_agree(&got, &expected) {
        return Err(format!(
            "block {block} sums to {} (squares {}); the CPU makes it {} ({})",
            got.sum, got.sum_sq, expected.sum, expected.sum_sq
        ));
    }
    Ok(())
}

/// Recomputes [`SIM_SPOT_BLOCKS`] blocks drawn from `seed`; they must
/// agree with the output's within the model's [`Tolerance`] (bit for bit
/// where both ran on CPUs).
pub(crate) fn spot_check(task: &SimTask, output: &[u8], seed: u64) -> Spot {
    let Ok(output) = serde_json::from_slice::<SimOutput>(output) else {
        return Spot::failed("is not a sim task's output (JSON partial sums)".to_owned());
    };
    if output.blocks.len() as u64 != SIM_BLOCKS {
        return Spot::failed(format!("has {} blocks, not {SIM_BLOCKS}", output.blocks.len()));
    }
    // Each block's count is known without running it: a cheap check of all.
    if let Some((block, got)) =
        output.blocks.iter().enumerate().find(|(block, got)| !block_plausible(task, *block as u64, got))
    {
        return Spot::failed(format!(
            "block {block} claims {} samples with sums {} and {}",
            got.n, got.sum, got.sum_sq
        ));
    }
    // Distinct blocks, drawn from the seed.
    let mut picked: Vec<u64> = Vec::with_capacity(SIM_SPOT_BLOCKS as usize);
    let mut draw = 0u64;
    while (picked.len() as u64) < SIM_SPOT_BLOCKS {
        let block = mix(seed ^ draw.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % SIM_BLOCKS;
        draw += 1;
        if !picked.contains(&block) {
            picked.push(block);
        }
    }
    let recomputed: Vec<SimBlock> = picked.par_iter().map(|block| run_block(task, *block)).collect();
    let tolerance = task.tolerance();
    let mut work_units = 0;
    for (block, expected) in picked.iter().zip(recomputed) {
        work_units += expected.n;
        let got = output.blocks[*block as usize];
        let alike = match tolerance {
            Some(tolerance) => tolerance.blocks_agree(&got, &expected),
            None => {
                got.n == expected.n
                    && got.sum.to_bits() == expected.sum.to_bits()
                    && got.sum_sq.to_bits() == expected.sum_sq.to_bits()
            }
        };
        if !alike {
            return Spot::failed(format!(
                "block {block} sums to {} over {} samples; recomputed: {} over {}",
                got.sum, got.n, expected.sum, expected.n
            ));
        }
    }
    Spot {
        passed: true,
        detail: match tolerance {
            Some(_) => format!("{SIM_SPOT_BLOCKS} of {SIM_BLOCKS} blocks recomputed alike within tolerance"),
            None => format!("{SIM_SPOT_BLOCKS} of {SIM_BLOCKS} blocks recomputed alike, bit for bit"),
        },
        work_units,
    }
}

/// Whether two outputs of one task are the same result: every block
/// within the model's tolerance for a task that asked for a GPU, byte for
/// byte for one that did not (the CPU path is bit-exact). An output that
/// does not decode agrees only with the same bytes.
pub(crate) fn outputs_agree(task: &SimTask, a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    let Some(tolerance) = task.tolerance() else { return false };
    let (Ok(a), Ok(b)) = (serde_json::from_slice::<SimOutput>(a), serde_json::from_slice::<SimOutput>(b)) else {
        return false;
    };
    a.blocks.len() as u64 == SIM_BLOCKS
        && b.blocks.len() as u64 == SIM_BLOCKS
        && (0..SIM_BLOCKS as usize).all(|block| {
            block_plausible(task, block as u64, &a.blocks[block])
                && tolerance.blocks_agree(&a.blocks[block], &b.blocks[block])
        })
}

/// Whether `got` could be block `block` of `task`: its sample count, and
/// finite sums, the sum of squares not negative.
fn block_plausible(task: &SimTask, block: u64, got: &SimBlock) -> bool {
    let (start, end) = task.kernel().block_range(block);
    got.n == end - start && got.sum.is_finite() && got.sum_sq.is_finite() && got.sum_sq >= 0.0
}

/// `result.json`: the estimate over all samples, its standard error and
/// 95% confidence interval, and the exact answer where one is known.
pub(crate) fn assemble(spec: &SimSpec, outputs: &[Vec<u8>]) -> Result<Vec<Artifact>, AssembleError> {
    let tasks = plan(spec, DeviceChoice::Cpu)?;
    let (mut n, mut sum, mut sum_sq) = (0u64, 0.0f64, 0.0f64);
    for ((task_idx, output), task) in outputs.iter().enumerate().zip(&tasks) {
        let output: SimOutput = serde_json::from_slice(output)
            .map_err(|err| AssembleError::BadOutput { task_idx, reason: format!("not a sim output: {err}") })?;
        if output.blocks.len() as u64 != SIM_BLOCKS {
            let reason = format!("has {} blocks, not {SIM_BLOCKS}", output.blocks.len());
            return Err(AssembleError::BadOutput { task_idx, reason });
        }
        if let Some(block) = (0..SIM_BLOCKS).find(|b| !block_plausible(task, *b, &output.blocks[*b as usize])) {
            let reason = format!("block {block} does not hold its samples' count or has sums that are not finite");
            return Err(AssembleError::BadOutput { task_idx, reason });
        }
        for block in output.blocks {
            n += block.n;
            sum += block.sum;
            sum_sq += block.sum_sq;
        }
    }
    let estimate = Estimate::from_sums(n, sum, sum_sq);
    let exact = match spec.model().map_err(AssembleError::from)? {
        SimModel::Option(model) => Some(model.black_scholes()),
        SimModel::Slab(model) => model.exact(),
    };
    let result = serde_json::json!({
        "workload": "sim",
        "model": spec.model,
        "tasks": spec.tasks,
        "samples": n,
        "estimate": estimate.mean,
        "std_error": estimate.std_error,
        "ci95": [estimate.mean - Z95 * estimate.std_error, estimate.mean + Z95 * estimate.std_error],
        "exact": exact,
    });
    Ok(vec![Artifact {
        name: "result.json".to_owned(),
        media_type: "application/json".to_owned(),
        bytes: serde_json::to_vec_pretty(&result).expect("a JSON value serializes"),
    }])
}

/// A sample mean and its standard error.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// The mean of the samples.
    pub mean: f64,
    /// The standard error of the mean.
    pub std_error: f64,
}

impl Estimate {
    fn from_sums(n: u64, sum: f64, sum_sq: f64) -> Estimate {
        let count = n as f64;
        let mean = sum / count;
        let variance = if n > 1 { ((sum_sq - count * mean * mean) / (count - 1.0)).max(0.0) } else { 0.0 };
        Estimate { mean, std_error: libm::sqrt(variance / count) }
    }
}

/// The standard normal distribution function.
fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// splitmix64's finaliser.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A counter-based generator: the `n`th number of a sample is a hash of
/// (key, n), so any sample's numbers can be drawn alone, on any thread or
/// device.
struct Counter {
    key: u64,
    n: u64,
}

impl Counter {
    fn next_u64(&mut self) -> u64 {
        self.n += 1;
        mix(self.key ^ mix(self.n))
    }

    /// Uniform in (0, 1]: never 0, so its logarithm is finite.
    fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A standard normal variate (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.open01(), self.open01());
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(2.0 * std::f64::consts::PI * u2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn option_spec(tasks: u64, samples_per_task: u64) -> SimSpec {
        SimSpec { model: "option".into(), tasks, samples_per_task, seed: 11, option: None, slab: None }
    }

    fn estimate(spec: &SimSpec) -> (Estimate, Vec<Vec<u8>>) {
        let outputs: Vec<Vec<u8>> =
            plan(spec, DeviceChoice::Cpu).unwrap().iter().map(|task| run(task).unwrap().output).collect();
        let result = assemble(spec, &outputs).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&result[0].bytes).unwrap();
        let estimate =
            Estimate { mean: value["estimate"].as_f64().unwrap(), std_error: value["std_error"].as_f64().unwrap() };
        (estimate, outputs)
    }

    #[test]
    fn task_inputs_travel_as_json_and_run_as_planned() {
        let spec = option_spec(3, 1_000);
        let inputs = crate::plan(&crate::WorkloadSpec::Sim(spec.clone())).unwrap();
        let direct = plan(&spec, DeviceChoice::Cpu).unwrap();
        for (input, task) in inputs.iter().zip(&direct) {
            assert_eq!(crate::run_task(input).unwrap(), run(task).unwrap());
            let output = crate::run_task(input).unwrap().output;
            let spot = crate::spot_check(input, &output, 9).unwrap();
            assert!(spot.passed, "{}", spot.detail);
        }
    }

    #[test]
    fn a_tasks_output_is_the_same_bits_on_one_thread_or_many() {
        let task = &plan(&option_spec(2, 10_000), DeviceChoice::Cpu).unwrap()[1];
        let many = run(task).unwrap();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        let one = pool.install(|| run(task).unwrap());
        assert_eq!(many, one);
        let other = run(&plan(&option_spec(2, 10_000), DeviceChoice::Cpu).unwrap()[0]).unwrap();
        assert_ne!(many.output, other.output, "tasks draw different samples");
    }

    #[test]
    fn the_option_estimate_converges_on_black_scholes_at_one_over_root_n() {
        let exact = OptionModel::default().black_scholes();
        assert!((exact - 8.021_352_235).abs() < 1e-6, "{exact}");
        let mut previous: Option<Estimate> = None;
        for samples in [4_000u64, 16_000, 64_000, 256_000] {
            let (estimate, _) = estimate(&option_spec(4, samples / 4));
            assert!(
                (estimate.mean - exact).abs() < 4.0 * estimate.std_error,
                "{samples} samples: {estimate:?} against {exact}"
            );
            if let Some(previous) = previous {
                // Four times the samples, half the error.
                let ratio = previous.std_error / estimate.std_error;
                assert!((1.8..2.2).contains(&ratio), "{samples} samples: error shrank {ratio}×");
            }
            previous = Some(estimate);
        }
    }

    #[test]
    fn a_pure_absorber_lets_through_e_to_the_minus_thickness_and_scattering_changes_it() {
        let slab = |scatter_ratio: f64| SimSpec {
            model: "slab".into(),
            tasks: 2,
            samples_per_task: 50_000,
            seed: 3,
            option: None,
            slab: Some(SlabModel { thickness: 2.0, scatter_ratio }),
        };
        let (absorber, _) = estimate(&slab(0.0));
        let exact = libm::exp(-2.0);
        assert!((absorber.mean - exact).abs() < 4.0 * absorber.std_error, "{absorber:?} against {exact}");
        let (scatterer, _) = estimate(&slab(0.9));
        assert!(scatterer.mean > absorber.mean + 10.0 * absorber.std_error, "{scatterer:?} vs {absorber:?}");
    }

    #[test]
    fn a_spot_check_recomputes_blocks_and_catches_a_changed_one() {
        let task = &plan(&option_spec(1, 6_400), DeviceChoice::Cpu).unwrap()[0];
        let honest = run(task).unwrap().output;
        let spot = spot_check(task, &honest, 5);
        assert!(spot.passed, "{}", spot.detail);
        assert_eq!(spot.work_units, SIM_SPOT_BLOCKS * 100);
        // A cheater that did a quarter of the work and guessed the rest is
        // caught unless every recomputed block is one it did.
        let mut output: SimOutput = serde_json::from_slice(&honest).unwrap();
        for block in output.blocks.iter_mut().skip(16) {
            block.sum *= 1.01;
        }
        let forged = serde_json::to_vec(&output).unwrap();
        let caught = (0..100).filter(|seed| !spot_check(task, &forged, *seed).passed).count();
        assert!(caught >= 95, "caught {caught} of 100");
        // A count claimed in a block it did not run is caught every time.
        let mut output: SimOutput = serde_json::from_slice(&honest).unwrap();
        output.blocks[63].n += 1_000;
        let inflated = serde_json::to_vec(&output).unwrap();
        assert!((0..20).all(|seed| !spot_check(task, &inflated, seed).passed));
        let spec = option_spec(1, 6_400);
        let err = assemble(&spec, &[inflated]).unwrap_err();
        assert!(err.to_string().contains("block 63"), "{err}");
        assert!(!spot_check(task, b"{}", 1).passed);
    }

    #[test]
    fn bad_specs_name_their_field() {
        let cases = [
            (SimSpec { model: "weather".into(), ..option_spec(1, 1) }, "sim.model"),
            (SimSpec { tasks: 0, ..option_spec(1, 1) }, "sim.tasks"),
            (SimSpec { samples_per_task: 0, ..option_spec(1, 1) }, "sim.samples_per_task"),
            (
                SimSpec {
                    option: Some(OptionModel { volatility: -1.0, ..OptionModel::default() }),
                    ..option_spec(1, 1)
                },
                "sim.option.volatility",
            ),
            (SimSpec { slab: Some(SlabModel::default()), ..option_spec(1, 1) }, "sim.slab"),
        ];
        for (spec, field) in cases {
            assert_eq!(spec.validate().unwrap_err().field(), Some(field));
        }
    }

    /// A device whose kernel gives the CPU's blocks, each sum scaled by
    /// `scale`, and `blocks` of them.
    struct Kernel {
        scale: f64,
        blocks: usize,
    }

    impl Accelerator for Kernel {
        fn device(&self) -> &str {
            "gpu3"
        }

        fn hash_search(&self, _: &crate::HashSearch<'_>) -> Result<Option<crate::HashFinds>, AccelError> {
            Ok(None)
        }

        fn sim_blocks(&self, task: &SimKernelTask) -> Result<Option<Vec<SimBlock>>, AccelError> {
            let blocks = (0..SIM_BLOCKS)
                .map(|block| task.cpu_block(block))
                .map(|block| SimBlock { sum: block.sum * self.scale, sum_sq: block.sum_sq * self.scale, ..block })
                .take(self.blocks)
                .collect();
            Ok(Some(blocks))
        }
    }

    fn gpu_input(spec: &SimSpec) -> Vec<u8> {
        crate::plan_on(&crate::WorkloadSpec::Sim(spec.clone()), DeviceChoice::Gpu).unwrap().remove(0)
    }

    #[test]
    fn a_kernel_within_tolerance_runs_the_task_in_other_bytes_that_agree_with_the_cpu_s() {
        let input = gpu_input(&option_spec(1, 64_000));
        assert!(matches!(crate::decode_task(&input).unwrap(), crate::Decoded::BuiltIn { gpu: true }));
        let cpu = crate::run_task(&input).unwrap().output;
        let ran = crate::run_task_on(&input, Some(&Kernel { scale: 1.0 + 1e-6, blocks: 64 })).unwrap();
        assert_eq!((ran.device.as_deref(), ran.accel_error), (Some("gpu3"), None));
        assert_ne!(ran.run.output, cpu, "f32 sums are other bits");
        assert!(crate::outputs_agree(&input, &ran.run.output, &cpu).unwrap());
        assert!(crate::spot_check(&input, &ran.run.output, 4).unwrap().passed, "the CPU's spot check takes it");
        // A task that does not ask for a GPU never goes to one.
        let cpu_input = crate::plan(&crate::WorkloadSpec::Sim(option_spec(1, 64_000))).unwrap().remove(0);
        let ran = crate::run_task_on(&cpu_input, Some(&Kernel { scale: 1.0 + 1e-6, blocks: 64 })).unwrap();
        assert_eq!((ran.device, ran.run.output), (None, cpu));
    }

    #[test]
    fn a_kernel_off_by_more_than_the_tolerance_or_short_of_blocks_leaves_the_task_to_the_cpu() {
        let input = gpu_input(&option_spec(1, 64_000));
        let cpu = crate::run_task(&input).unwrap();
        for (kernel, words) in
            [(Kernel { scale: 1.01, blocks: 64 }, "the CPU makes it"), (Kernel { scale: 1.0, blocks: 63 }, "63 blocks")]
        {
            let ran = crate::run_task_on(&input, Some(&kernel)).unwrap();
            assert_eq!((ran.device, &ran.run), (None, &cpu));
            let err = ran.accel_error.expect("reported").to_string();
            assert!(err.starts_with("gpu3: ") && err.contains(words), "{err}");
        }
    }

    #[test]
    fn outputs_agree_within_the_models_tolerance_and_no_further() {
        let spec = option_spec(1, 64_000);
        let input = gpu_input(&spec);
        let cpu = crate::run_task(&input).unwrap().output;
        let scaled = |output: &[u8], block: usize, scale: f64| {
            let mut output: SimOutput = serde_json::from_slice(output).unwrap();
            output.blocks[block].sum *= scale;
            serde_json::to_vec(&output).unwrap()
        };
        assert!(crate::outputs_agree(&input, &cpu, &scaled(&cpu, 5, 1.0 + 1e-6)).unwrap());
        assert!(!crate::outputs_agree(&input, &cpu, &scaled(&cpu, 5, 1.001)).unwrap(), "a block 0.1% off");
        assert!(!crate::outputs_agree(&input, &cpu, b"{}").unwrap());
        // A slab's particles get through or not: a few may turn.
        let slab = SimSpec { model: "slab".into(), slab: Some(SlabModel::default()), ..option_spec(1, 6_400) };
        let input = gpu_input(&slab);
        let cpu = crate::run_task(&input).unwrap().output;
        let turned = |n: f64| {
            let mut output: SimOutput = serde_json::from_slice(&cpu).unwrap();
            output.blocks[9].sum += n;
            output.blocks[9].sum_sq += n;
            serde_json::to_vec(&output).unwrap()
        };
        assert!(crate::outputs_agree(&input, &cpu, &turned(2.0)).unwrap());
        assert!(!crate::outputs_agree(&input, &cpu, &turned(4.0)).unwrap());
        // A CPU task is bit-exact: its outputs agree byte for byte only.
        let cpu_input = crate::plan(&crate::WorkloadSpec::Sim(slab)).unwrap().remove(0);
        assert!(!crate::outputs_agree(&cpu_input, &cpu, &turned(1.0)).unwrap());
        // So is its spot check: a turned particle is caught whenever its
        // block is drawn, where the GPU task's check lets it pass.
        let caught = |input: &[u8]| {
            (0..64).filter(|seed| !crate::spot_check(input, &turned(1.0), *seed).unwrap().passed).count()
        };
        assert!(caught(&cpu_input) > 0);
        assert_eq!(caught(&input), 0);
        // Other workloads agree byte for byte only.
        let noop = crate::plan(&crate::WorkloadSpec::Noop(crate::noop::NoopSpec { n_tasks: 1, task_ms: 0 }))
            .unwrap()
            .remove(0);
        assert!(crate::outputs_agree(&noop, b"", b"").unwrap());
        assert!(!crate::outputs_agree(&noop, b"", b" ").unwrap());
    }
}
