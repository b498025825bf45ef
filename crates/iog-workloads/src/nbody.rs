//! The `nbody` workload: a gravitational N-body simulation split into
//! time windows, one task per window, each starting from the state the
//! window before it ended with.
//!
//! Physics in N-body units (G = 1): particle i feels the softened
//! acceleration `a_i = Σ_j m_j (r_j − r_i) / (|r_j − r_i|² + ε²)^{3/2}`,
//! and the system moves by kick-drift-kick leapfrog (velocity Verlet),
//! which is symplectic: the total energy, kinetic plus the softened
//! potential `−Σ_{i<j} m_i m_j / √(r² + ε²)`, wobbles within a bound that
//! shrinks with the square of the step rather than drifting away.
//!
//! Initial models, generated from the seed by a counter-based generator
//! (each particle's numbers are a hash of (seed, particle, n)):
//! - `plummer`: a Plummer sphere of total mass 1 with scale length 3π/16,
//!   so its energy is about −1/4, its velocities drawn from the
//!   isotropic distribution function that keeps it in virial equilibrium
//!   (Aarseth, Hénon & Wielen 1974);
//! - `disc`: a central body of mass 1/2 and a thin disc of the other
//!   particles (mass 1/2 in all, uniform surface density between radii
//!   0.1 and 1, 0.02 thick) on circular orbits about the mass inside
//!   them (pulling with the softened force).
//!
//! Both are moved into the centre-of-mass frame.
//!
//! The tasks are chained: [`crate::plan`] gives window 0's input only, and
//! [`crate::next_input`] makes window k's input from window k − 1's input
//! and accepted output. Everything is `f64`, each particle's force is
//! summed over the others in index order on one thread (particles are
//! spread over threads, never one particle's sum), and the maths comes
//! from `libm`, so a window's output is the same bits on any machine and
//! any number of threads: replicas agree byte for byte, and a chain of
//! windows ends exactly where one long run would.
//!
//! A window's output holds the state at the boundaries of its
//! [`NBODY_SEGMENTS`] segments of steps, so a spot check recomputes one
//! segment rather than the whole window.
//!
//! A job that asks for a GPU (`[resources] device = "gpu"`) has its
//! windows' steps run by a worker's GPU kernel where it has one (see
//! [`NbodyKernelTask`]): the same `f64` leapfrog, but a GPU's division and
//! square root need not round as the CPU's do and its compiler may fuse a
//! multiply and an add, so such a window agrees with the CPU's within
//! [`NBODY_GPU_RELATIVE_ERROR`] rather than bit for bit, and so do its
//! spot checks and replicas. Energies are always computed on the CPU from
//! the state the output holds, so they still check bit for bit.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::accel::{AccelError, Accelerator, DeviceChoice, Ran};
use crate::spot::{Draw, Spot};
use crate::{Artifact, AssembleError, SpecError, TaskRun, check};

/// Most particles one job may simulate.
pub const NBODY_PARTICLES_MAX: u32 = 4096;
/// Most windows (tasks) one job may have.
pub const NBODY_WINDOWS_MAX: u64 = 10_000;
/// Most steps one window may take.
pub const NBODY_STEPS_PER_WINDOW_MAX: u64 = 100_000;
/// Most pairwise interactions one task may compute: particles² ×
/// steps_per_window. 10¹¹ is some tens of seconds on a 16-core machine.
pub const NBODY_INTERACTIONS_PER_TASK_MAX: u64 = 100_000_000_000;
/// Smallest accepted softening length: its square must stay a normal
/// `f64` far from underflow.
pub const NBODY_SOFTENING_MIN: f64 = 1e-9;
/// Segments a window's steps are split into; the output holds the state
/// at each boundary between them, and a spot check recomputes one.
pub const NBODY_SEGMENTS: u64 = 8;

/// How far a window that asked for a GPU may be from the same window run
/// on a CPU: each coordinate of a particle's position within this share
/// of the larger of its size and the state's RMS radius, and each of its
/// velocity's within this share of the larger of its size and the RMS
/// speed: about 10¹⁰ times a `f64`'s rounding, room for rounding
/// differences to grow over a window's steps in a chaotic system, and far
/// below any change a cheater could make to a state. (llvmpipe's kernel
/// gives the CPU's bits; the growth on other GPUs is measured with
/// `iog-gpu`'s `kernel_rates` example, see `docs/BENCHMARKS.md`.)
pub const NBODY_GPU_RELATIVE_ERROR: f64 = 1e-6;

/// Scale length of the Plummer sphere whose energy is −1/4 (G = M = 1).
const PLUMMER_SCALE: f64 = 3.0 * std::f64::consts::PI / 16.0;
/// Radii are drawn from the Plummer mass profile up to this share of the
/// mass, so no particle starts absurdly far out (about 23 scale lengths).
const PLUMMER_MASS_CUT: f64 = 0.999;
/// Draws the velocity rejection sampler makes before it gives up (each is
/// accepted about half the time, so it never does).
const PLUMMER_VELOCITY_TRIES: u32 = 1_000;
/// The disc model's central mass, its inner and outer radius and its
/// half thickness.
const DISC_CENTRAL_MASS: f64 = 0.5;
const DISC_R_IN: f64 = 0.1;
const DISC_R_OUT: f64 = 1.0;
const DISC_HALF_THICKNESS: f64 = 0.01;
/// Salt of the initial models' random stream.
const NBODY_STREAM: u64 = 0x6E62_6F64_795F_7631;

/// Parameters of the `nbody` workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NbodySpec {
    /// Particles (2 to 4096).
    pub particles: u32,
    /// Time windows, one task each, run one after another (1 to 10000).
    pub windows: u64,
    /// Leapfrog steps in each window (1 to 100000).
    pub steps_per_window: u64,
    /// The time step, in N-body time units (more than 0, at most 1).
    pub dt: f64,
    /// The Plummer softening length ε (default 0.01).
    #[serde(default = "default_softening")]
    pub softening: f64,
    /// Seed of the initial model (default 0).
    #[serde(default)]
    pub seed: u64,
    /// The initial model: `plummer` (default) or `disc`.
    #[serde(default = "default_initial")]
    pub initial: String,
}

fn default_softening() -> f64 {
    0.01
}

fn default_initial() -> String {
    "plummer".to_owned()
}

impl NbodySpec {
    /// Checks every field, and the work of one task.
    pub fn validate(&self) -> Result<(), SpecError> {
        check::between("nbody.particles", self.particles, 2, NBODY_PARTICLES_MAX)?;
        check::between("nbody.windows", self.windows, 1, NBODY_WINDOWS_MAX)?;
        check::between("nbody.steps_per_window", self.steps_per_window, 1, NBODY_STEPS_PER_WINDOW_MAX)?;
        if !(self.dt.is_finite() && self.dt > 0.0 && self.dt <= 1.0) {
            return Err(SpecError::invalid(
                "nbody.dt",
                format!("must be a number more than 0 and at most 1, got {}", self.dt),
            ));
        }
        if !(self.softening.is_finite() && self.softening >= NBODY_SOFTENING_MIN) {
            return Err(SpecError::invalid(
                "nbody.softening",
                format!("must be a finite length of at least {NBODY_SOFTENING_MIN}, got {}", self.softening),
            ));
        }
        if !matches!(self.initial.as_str(), "plummer" | "disc") {
            return Err(SpecError::invalid(
                "nbody.initial",
                format!("must be plummer or disc; got {:?}", self.initial),
            ));
        }
        let interactions = self.interactions_per_task();
        if interactions > NBODY_INTERACTIONS_PER_TASK_MAX {
            return Err(SpecError::invalid(
                "nbody.steps_per_window",
                format!(
                    "makes each task compute {}² × {} = {interactions} pairwise forces, more than the \
                     {NBODY_INTERACTIONS_PER_TASK_MAX} a task may; take fewer steps per window and more windows, \
                     or fewer particles",
                    self.particles, self.steps_per_window
                ),
            ));
        }
        Ok(())
    }

    /// particles² × steps_per_window: the pairwise forces one task computes.
    fn interactions_per_task(&self) -> u64 {
        let particles = u64::from(self.particles);
        (particles * particles).saturating_mul(self.steps_per_window)
    }

    /// The time after `step` steps from the start of the job.
    fn time_at(&self, step: u64) -> f64 {
        step as f64 * self.dt
    }

    /// The step boundary at the start of segment `segment` (of
    /// [`NBODY_SEGMENTS`]) of a window, counted from the window's start;
    /// `segment_start(NBODY_SEGMENTS)` is the window's length.
    fn segment_start(&self, segment: u64) -> u64 {
        self.steps_per_window * segment / NBODY_SEGMENTS
    }

    /// The state the job starts from, generated from the seed.
    fn initial_state(&self) -> Checkpoint {
        let n = self.particles as usize;
        let stream = crate::sim::mix(crate::sim::mix(self.seed) ^ NBODY_STREAM);
        let mut state = match self.initial.as_str() {
            "disc" => disc(n, stream, self.softening),
            _ => plummer(n, stream),
        };
        to_centre_of_mass_frame(&mut state);
        state
    }
}

/// The state of every particle at one step: what a window starts from
/// and ends with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Checkpoint {
    /// Steps since the job's start.
    step: u64,
    /// Time since the job's start: `step × dt`.
    time: f64,
    masses: Vec<f64>,
    positions: Vec<[f64; 3]>,
    velocities: Vec<[f64; 3]>,
}

/// The state at a segment boundary inside a window (the masses do not
/// change, so they are left out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Phase {
    step: u64,
    time: f64,
    positions: Vec<[f64; 3]>,
    velocities: Vec<[f64; 3]>,
}

/// The input of one window: the job's parameters, the window's index and
/// the state it starts from (window 0 generates its state from the seed
/// and carries none).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NbodyTask {
    spec: NbodySpec,
    window: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<Checkpoint>,
    /// The job asked for a GPU: a worker with an nbody kernel runs the
    /// window there, and its output agrees with the CPU's within
    /// [`NBODY_GPU_RELATIVE_ERROR`] rather than bit for bit.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    gpu: bool,
}

/// A window's output (JSON, serde_json with `float_roundtrip`, so the
/// next window and a spot check read back the very bits).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NbodyOutput {
    window: u64,
    start_time: f64,
    end_time: f64,
    /// blake3 of the state the window started from (see [`digest`]), so
    /// assembly can tell that the chain of windows is unbroken.
    start_digest: String,
    /// Total energy at the start and at the end of the window.
    energy_start: f64,
    energy_end: f64,
    /// The state at the start of segments 1 to [`NBODY_SEGMENTS`] − 1.
    boundaries: Vec<Phase>,
    /// The state the window ended with: the next window's start.
    end: Checkpoint,
}

pub(crate) fn plan(spec: &NbodySpec, device: DeviceChoice) -> Result<NbodyTask, SpecError> {
    spec.validate()?;
    Ok(NbodyTask { spec: spec.clone(), window: 0, state: None, gpu: device == DeviceChoice::Gpu })
}

impl NbodyTask {
    pub(crate) fn wants_gpu(&self) -> bool {
        self.gpu
    }

    /// The window's steps as a GPU kernel takes them.
    pub(crate) fn kernel_task(&self) -> Result<NbodyKernelTask, SpecError> {
        Ok(NbodyKernelTask::new(&self.spec, &self.start()?))
    }

    /// Checks the parameters and the state carried, and returns the state
    /// the window starts from.
    fn start(&self) -> Result<Checkpoint, SpecError> {
        let spec = &self.spec;
        spec.validate()?;
        check::between("window", self.window, 0, spec.windows - 1)?;
        match (&self.state, self.window) {
            (None, 0) => Ok(spec.initial_state()),
            (None, window) => Err(SpecError::invalid(
                "state",
                format!("is missing: window {window} carries the state it starts from"),
            )),
            (Some(_), 0) => Err(SpecError::invalid(
                "state",
                "is present in window 0, which starts from the model its seed generates",
            )),
            (Some(state), window) => {
                check_state(spec, state, window * spec.steps_per_window)
                    .map_err(|reason| SpecError::invalid("state", reason))?;
                Ok(state.clone())
            }
        }
    }
}

/// Whether `state` could be the state of a job of `spec` after `step`
/// steps: its step and time, one mass, position and velocity per
/// particle, every number finite, every mass more than 0.
fn check_state(spec: &NbodySpec, state: &Checkpoint, step: u64) -> Result<(), String> {
    check_phase_shape(spec, state.step, state.time, &state.positions, &state.velocities, step)?;
    if state.masses.len() != spec.particles as usize {
        return Err(format!("has {} masses for {} particles", state.masses.len(), spec.particles));
    }
    if let Some(i) = state.masses.iter().position(|m| !(m.is_finite() && *m > 0.0)) {
        return Err(format!("gives particle {i} the mass {}, not a finite number more than 0", state.masses[i]));
    }
    Ok(())
}

fn check_phase_shape(
    spec: &NbodySpec,
    got_step: u64,
    got_time: f64,
    positions: &[[f64; 3]],
    velocities: &[[f64; 3]],
    step: u64,
) -> Result<(), String> {
    if got_step != step {
        return Err(format!("is at step {got_step}, not step {step}"));
    }
    let time = spec.time_at(step);
    if got_time.to_bits() != time.to_bits() {
        return Err(format!("is at time {got_time}, not {time} (step {step} × dt)"));
    }
    let n = spec.particles as usize;
    if positions.len() != n || velocities.len() != n {
        return Err(format!("has {} positions and {} velocities for {n} particles", positions.len(), velocities.len()));
    }
    let finite = |v: &[f64; 3]| v.iter().all(|x| x.is_finite());
    if let Some(i) = positions.iter().position(|v| !finite(v)) {
        return Err(format!("gives particle {i} a position that is not finite"));
    }
    if let Some(i) = velocities.iter().position(|v| !finite(v)) {
        return Err(format!("gives particle {i} a velocity that is not finite"));
    }
    Ok(())
}

/// The particles moving: masses, positions, velocities and the
/// accelerations at the positions.
struct Live<'a> {
    spec: &'a NbodySpec,
    masses: Vec<f64>,
    positions: Vec<[f64; 3]>,
    velocities: Vec<[f64; 3]>,
    accelerations: Vec<[f64; 3]>,
    step: u64,
}

impl<'a> Live<'a> {
    fn new(
        spec: &'a NbodySpec,
        masses: Vec<f64>,
        positions: Vec<[f64; 3]>,
        velocities: Vec<[f64; 3]>,
        step: u64,
    ) -> Live<'a> {
        let eps2 = spec.softening * spec.softening;
        let accelerations = accelerations(&masses, &positions, eps2);
        Live { spec, masses, positions, velocities, accelerations, step }
    }

    /// `steps` kick-drift-kick steps.
    fn advance(&mut self, steps: u64) {
        let eps2 = self.spec.softening * self.spec.softening;
        leapfrog(
            &self.masses,
            &mut self.positions,
            &mut self.velocities,
            &mut self.accelerations,
            self.spec.dt,
            eps2,
            steps,
        );
        self.step += steps;
    }

    fn phase(&self) -> Phase {
        Phase {
            step: self.step,
            time: self.spec.time_at(self.step),
            positions: self.positions.clone(),
            velocities: self.velocities.clone(),
        }
    }
}

/// `steps` kick-drift-kick steps of `dt`; `accelerations` are those at
/// the positions, before and after.
fn leapfrog(
    masses: &[f64],
    positions: &mut [[f64; 3]],
    velocities: &mut [[f64; 3]],
    accelerations: &mut Vec<[f64; 3]>,
    dt: f64,
    eps2: f64,
    steps: u64,
) {
    let half = 0.5 * dt;
    for _ in 0..steps {
        for (v, a) in velocities.iter_mut().zip(accelerations.iter()) {
            for k in 0..3 {
                v[k] += a[k] * half;
            }
        }
        for (x, v) in positions.iter_mut().zip(velocities.iter()) {
            for k in 0..3 {
                x[k] += v[k] * dt;
            }
        }
        *accelerations = self::accelerations(masses, positions, eps2);
        for (v, a) in velocities.iter_mut().zip(accelerations.iter()) {
            for k in 0..3 {
                v[k] += a[k] * half;
            }
        }
    }
}

/// The softened acceleration of every particle. Particles are spread over
/// threads; each one's sum runs over the others in index order.
fn accelerations(masses: &[f64], positions: &[[f64; 3]], eps2: f64) -> Vec<[f64; 3]> {
    positions
        .par_iter()
        .enumerate()
        .map(|(i, &[xi, yi, zi])| {
            let mut a = [0.0f64; 3];
            for (j, (&[xj, yj, zj], &mj)) in positions.iter().zip(masses).enumerate() {
                if j == i {
                    continue;
                }
                let (dx, dy, dz) = (xj - xi, yj - yi, zj - zi);
                let r2 = dx * dx + dy * dy + dz * dz + eps2;
                let s = mj / (r2 * libm::sqrt(r2));
                a[0] += s * dx;
                a[1] += s * dy;
                a[2] += s * dz;
            }
            a
        })
        .collect()
}

/// Kinetic plus softened potential energy. The potential's pairs are
/// summed per particle (over the later ones, in order) on any thread, and
/// the per-particle sums in particle order.
fn energy(spec: &NbodySpec, masses: &[f64], positions: &[[f64; 3]], velocities: &[[f64; 3]]) -> f64 {
    let eps2 = spec.softening * spec.softening;
    let mut kinetic = 0.0f64;
    for (m, v) in masses.iter().zip(velocities) {
        kinetic += 0.5 * m * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
    }
    let partial: Vec<f64> = (0..positions.len())
        .into_par_iter()
        .map(|i| {
            let [xi, yi, zi] = positions[i];
            let mut sum = 0.0f64;
            for j in i + 1..positions.len() {
                let [xj, yj, zj] = positions[j];
                let (dx, dy, dz) = (xj - xi, yj - yi, zj - zi);
                sum += masses[i] * masses[j] / libm::sqrt(dx * dx + dy * dy + dz * dz + eps2);
            }
            sum
        })
        .collect();
    let mut potential = 0.0f64;
    for sum in partial {
        potential -= sum;
    }
    kinetic + potential
}

/// blake3 of a state's bits (step, time, and each particle's mass,
/// position and velocity), in hex.
fn digest(state: &Checkpoint) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"iog nbody state v1");
    hasher.update(&state.step.to_le_bytes());
    hasher.update(&state.time.to_bits().to_le_bytes());
    hasher.update(&(state.masses.len() as u64).to_le_bytes());
    for ((m, x), v) in state.masses.iter().zip(&state.positions).zip(&state.velocities) {
        hasher.update(&m.to_bits().to_le_bytes());
        for value in x.iter().chain(v) {
            hasher.update(&value.to_bits().to_le_bytes());
        }
    }
    hasher.finalize().to_hex().to_string()
}

/// The steps after which a kernel gives the state back: 1 (the step the
/// worker checks on its CPU) and the end of every segment with steps in
/// it, increasing.
fn kernel_stops(spec: &NbodySpec) -> Vec<u64> {
    let mut stops: Vec<u64> = std::iter::once(1)
        .chain((1..=NBODY_SEGMENTS).map(|s| spec.segment_start(s)).filter(|step| *step > 0))
        .collect();
    stops.sort_unstable();
    stops.dedup();
    stops
}

/// A window's steps as a GPU kernel takes them: the state it starts from,
/// the step and softening, and the steps after which it reads the state
/// back. The kernel must take the same kick-drift-kick steps as the CPU
/// (`v += a·(dt/2)`, `x += v·dt`, the accelerations at the new positions,
/// `v += a·(dt/2)`), each acceleration summed over the other particles in
/// index order as `s = m_j / (r² · √r²)` with
/// `r² = ((dx² + dy²) + dz²) + ε²`, all in `f64`.
#[derive(Debug, Clone, PartialEq)]
pub struct NbodyKernelTask {
    /// Each particle's mass.
    pub masses: Vec<f64>,
    /// Each particle's position at the start.
    pub positions: Vec<[f64; 3]>,
    /// Each particle's velocity at the start.
    pub velocities: Vec<[f64; 3]>,
    /// The time step.
    pub dt: f64,
    /// The softening length squared.
    pub eps2: f64,
    /// Steps from the start after which the state is wanted: increasing,
    /// at least 1, the last the window's length.
    pub stops: Vec<u64>,
}

/// Positions and velocities after some steps.
#[derive(Debug, Clone, PartialEq)]
pub struct NbodyState {
    /// Each particle's position.
    pub positions: Vec<[f64; 3]>,
    /// Each particle's velocity.
    pub velocities: Vec<[f64; 3]>,
}

impl NbodyKernelTask {
    fn new(spec: &NbodySpec, start: &Checkpoint) -> NbodyKernelTask {
        NbodyKernelTask {
            masses: start.masses.clone(),
            positions: start.positions.clone(),
            velocities: start.velocities.clone(),
            dt: spec.dt,
            eps2: spec.softening * spec.softening,
            stops: kernel_stops(spec),
        }
    }

    /// The states at the first `stops` stops, computed on the CPU: the
    /// reference a kernel is held to.
    pub fn cpu_states(&self, stops: usize) -> Vec<NbodyState> {
        let mut positions = self.positions.clone();
        let mut velocities = self.velocities.clone();
        let mut accelerations = accelerations(&self.masses, &positions, self.eps2);
        let mut done = 0;
        let mut states = Vec::with_capacity(stops);
        for &stop in self.stops.iter().take(stops) {
            leapfrog(
                &self.masses,
                &mut positions,
                &mut velocities,
                &mut accelerations,
                self.dt,
                self.eps2,
                stop - done,
            );
            done = stop;
            states.push(NbodyState { positions: positions.clone(), velocities: velocities.clone() });
        }
        states
    }

    /// Pairwise interactions the kernel computes: particles² per step,
    /// and once more at the start.
    pub fn interactions(&self) -> u64 {
        let n = self.masses.len() as u64;
        n * n * (self.stops.last().copied().unwrap_or(0) + 1)
    }
}

/// Where `got` is further from `want` than [`NBODY_GPU_RELATIVE_ERROR`]
/// allows (a coordinate off by more than that share of the larger of its
/// size and the RMS radius, a velocity's by more than that share of the
/// larger of its size and the RMS speed): the first such particle, said in
/// words; `None` when they agree.
pub fn state_off(
    got_positions: &[[f64; 3]],
    got_velocities: &[[f64; 3]],
    want_positions: &[[f64; 3]],
    want_velocities: &[[f64; 3]],
) -> Option<String> {
    if got_positions.len() != want_positions.len() || got_velocities.len() != want_velocities.len() {
        return Some(format!(
            "{} positions and {} velocities, not {} and {}",
            got_positions.len(),
            got_velocities.len(),
            want_positions.len(),
            want_velocities.len()
        ));
    }
    let rms = |vectors: &[[f64; 3]]| {
        let sum: f64 = vectors.iter().map(|v| v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sum();
        libm::sqrt(sum / vectors.len().max(1) as f64)
    };
    for (what, got, want) in
        [("position", got_positions, want_positions), ("velocity", got_velocities, want_velocities)]
    {
        let scale = rms(want);
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            // Written so that NaN is off too.
            let within = g.iter().zip(w).all(|(g, w)| (g - w).abs() <= NBODY_GPU_RELATIVE_ERROR * w.abs().max(scale));
            if !within {
                return Some(format!(
                    "particle {i}'s {what} {g:?} is more than {NBODY_GPU_RELATIVE_ERROR:e} of the scale {scale:e} \
                     from {w:?}"
                ));
            }
        }
    }
    None
}

/// Runs the window with `accel`'s nbody kernel where the task asked for a
/// GPU and the device has one, else on the CPU: its steps from its start,
/// recording the state at each segment boundary and the energy (on the
/// CPU) at both ends. A kernel whose states do not check out (shape,
/// finite numbers, and its first step within tolerance of the CPU's)
/// leaves the window to the CPU, and the result says why.
pub(crate) fn run_on(task: &NbodyTask, accel: Option<&dyn Accelerator>) -> Result<Ran, SpecError> {
    let spec = &task.spec;
    let start = task.start()?;
    let mut accel_error = None;
    if let Some(accel) = accel.filter(|_| task.gpu) {
        let kernel = NbodyKernelTask::new(spec, &start);
        let checked = accel.nbody_states(&kernel).and_then(|states| match states {
            Some(states) => {
                check_kernel_states(&kernel, &states).map(|()| Some(states)).map_err(|message| AccelError {
                    device: accel.device().to_owned(),
                    message: format!("its nbody kernel's states do not check out: {message}"),
                })
            }
            None => Ok(None),
        });
        match checked {
            Ok(Some(states)) => {
                let state_at = |step: u64| {
                    let at = kernel.stops.binary_search(&step).expect("every segment's end is a stop");
                    states[at].clone()
                };
                let mut phases = Vec::with_capacity(NBODY_SEGMENTS as usize);
                for segment in 1..=NBODY_SEGMENTS {
                    let step = spec.segment_start(segment);
                    // An empty first segment ends where the window starts.
                    let state = match step {
                        0 => NbodyState { positions: start.positions.clone(), velocities: start.velocities.clone() },
                        step => state_at(step),
                    };
                    let step = start.step + step;
                    phases.push(Phase {
                        step,
                        time: spec.time_at(step),
                        positions: state.positions,
                        velocities: state.velocities,
                    });
                }
                let run = output_of(task, start, phases)?;
                return Ok(Ran { run, device: Some(accel.device().to_owned()), accel_error: None });
            }
            Ok(None) => {}
            Err(err) => accel_error = Some(err),
        }
    }
    let masses = start.masses.clone();
    let mut live = Live::new(spec, masses, start.positions.clone(), start.velocities.clone(), start.step);
    let mut phases = Vec::with_capacity(NBODY_SEGMENTS as usize);
    for segment in 0..NBODY_SEGMENTS {
        live.advance(spec.segment_start(segment + 1) - spec.segment_start(segment));
        phases.push(live.phase());
    }
    Ok(Ran { run: output_of(task, start, phases)?, device: None, accel_error })
}

/// Checks a kernel's states: one per stop, each with a finite position and
/// velocity per particle, the first (one step in) within tolerance of the
/// CPU's.
fn check_kernel_states(kernel: &NbodyKernelTask, states: &[NbodyState]) -> Result<(), String> {
    if states.len() != kernel.stops.len() {
        return Err(format!("it gives {} states for {} stops", states.len(), kernel.stops.len()));
    }
    let n = kernel.masses.len();
    let finite = |vectors: &[[f64; 3]]| vectors.len() == n && vectors.iter().flatten().all(|x| x.is_finite());
    if let Some(at) = states.iter().position(|state| !(finite(&state.positions) && finite(&state.velocities))) {
        return Err(format!(
            "its state after {} steps does not hold {n} finite positions and velocities",
            kernel.stops[at]
        ));
    }
    let cpu = kernel.cpu_states(1).remove(0);
    match state_off(&states[0].positions, &states[0].velocities, &cpu.positions, &cpu.velocities) {
        Some(off) => Err(format!("after {} step(s), against the CPU's: {off}", kernel.stops[0])),
        None => Ok(()),
    }
}

/// A window's output from the state at the end of each of its segments:
/// every one must be finite.
fn output_of(task: &NbodyTask, start: Checkpoint, mut phases: Vec<Phase>) -> Result<TaskRun, SpecError> {
    let spec = &task.spec;
    let finite =
        |phase: &Phase| phase.positions.iter().chain(&phase.velocities).all(|v| v.iter().all(|x| x.is_finite()));
    if let Some(phase) = phases.iter().find(|phase| !finite(phase)) {
        return Err(SpecError::invalid(
            "nbody.dt",
            format!(
                "is too long for this system: a particle left the finite numbers by step {}; take a smaller nbody.dt \
                 or a larger nbody.softening",
                phase.step
            ),
        ));
    }
    let start_digest = digest(&start);
    let energy_start = energy(spec, &start.masses, &start.positions, &start.velocities);
    let last = phases.pop().expect("a window has its segments");
    let end = Checkpoint {
        step: last.step,
        time: last.time,
        masses: start.masses,
        positions: last.positions,
        velocities: last.velocities,
    };
    let output = NbodyOutput {
        window: task.window,
        start_time: start.time,
        end_time: end.time,
        start_digest,
        energy_start,
        energy_end: energy(spec, &end.masses, &end.positions, &end.velocities),
        boundaries: phases,
        end,
    };
    let output = serde_json::to_vec(&output).expect("finite numbers serialize");
    Ok(TaskRun { output, work_units: spec.interactions_per_task() })
}

/// Runs the window on the CPU.
#[cfg(test)]
pub(crate) fn run(task: &NbodyTask) -> Result<TaskRun, SpecError> {
    Ok(run_on(task, None)?.run)
}

/// Whether `output` could be `task`'s, which starts from `start`: its
/// window, times and steps, the digest of its start, one position and
/// velocity per particle at every boundary and at the end, the masses
/// unchanged, every number finite. Cheap: no step is recomputed.
fn check_output(task: &NbodyTask, start: &Checkpoint, output: &NbodyOutput) -> Result<(), String> {
    let spec = &task.spec;
    if output.window != task.window {
        return Err(format!("is the output of window {}, not of window {}", output.window, task.window));
    }
    if output.start_time.to_bits() != start.time.to_bits() {
        return Err(format!("starts at time {}, not {}", output.start_time, start.time));
    }
    let start_digest = digest(start);
    if output.start_digest != start_digest {
        return Err(format!(
            "starts from another state than its input's (digest {}, the input's {start_digest})",
            output.start_digest
        ));
    }
    if !(output.energy_start.is_finite() && output.energy_end.is_finite()) {
        return Err(format!("gives energies {} and {}, not finite numbers", output.energy_start, output.energy_end));
    }
    if output.boundaries.len() as u64 != NBODY_SEGMENTS - 1 {
        return Err(format!("holds {} segment boundaries, not {}", output.boundaries.len(), NBODY_SEGMENTS - 1));
    }
    for (b, phase) in output.boundaries.iter().enumerate() {
        let step = start.step + spec.segment_start(b as u64 + 1);
        check_phase_shape(spec, phase.step, phase.time, &phase.positions, &phase.velocities, step)
            .map_err(|reason| format!("boundary {b} {reason}"))?;
    }
    let end_step = start.step + spec.steps_per_window;
    check_state(spec, &output.end, end_step).map_err(|reason| format!("end state {reason}"))?;
    if output.end_time.to_bits() != output.end.time.to_bits() {
        return Err(format!("ends at time {}, but its end state is at {}", output.end_time, output.end.time));
    }
    if let Some(i) = (0..start.masses.len()).find(|i| output.end.masses[*i].to_bits() != start.masses[*i].to_bits()) {
        return Err(format!(
            "end state gives particle {i} the mass {}; it started with {}",
            output.end.masses[i], start.masses[i]
        ));
    }
    Ok(())
}

fn same_bits(a: &[[f64; 3]], b: &[[f64; 3]]) -> Option<usize> {
    a.iter().zip(b).position(|(a, b)| a.iter().zip(b).any(|(a, b)| a.to_bits() != b.to_bits()))
}

/// Checks the whole output cheaply (shape, times, steps, the start's
/// digest, masses), recomputes both energies, and recomputes one segment
/// drawn from `seed` and the last segment from the boundaries they start
/// at: each must end on the next boundary (or the end state) bit for bit.
/// The last is always checked because its end state is where the next
/// window of the chain starts: a forged end state is always caught.
pub(crate) fn spot_check(task: &NbodyTask, output: &[u8], seed: u64) -> Result<Spot, SpecError> {
    let start = task.start()?;
    let spec = &task.spec;
    let Ok(output) = serde_json::from_slice::<NbodyOutput>(output) else {
        return Ok(Spot::failed("is not an nbody window's output (JSON states and energies)".to_owned()));
    };
    if let Err(reason) = check_output(task, &start, &output) {
        return Ok(Spot::failed(reason));
    }
    let n2 = u64::from(spec.particles) * u64::from(spec.particles);
    let energy_start = energy(spec, &start.masses, &start.positions, &start.velocities);
    if energy_start.to_bits() != output.energy_start.to_bits() {
        return Ok(Spot::failed(format!(
            "gives the start's energy as {}; recomputed: {energy_start}",
            output.energy_start
        )));
    }
    let end = &output.end;
    let energy_end = energy(spec, &end.masses, &end.positions, &end.velocities);
    if energy_end.to_bits() != output.energy_end.to_bits() {
        return Ok(Spot::failed(format!(
            "gives the end state's energy as {}; recomputed: {energy_end}",
            output.energy_end
        )));
    }
    // A segment with steps in it (with fewer steps than segments, some are
    // empty), drawn from the seed; and always the last one, which ends on
    // the state the next window of the chain starts from.
    let nonempty: Vec<u64> =
        (0..NBODY_SEGMENTS).filter(|s| spec.segment_start(*s + 1) > spec.segment_start(*s)).collect();
    let drawn = nonempty[Draw::new(seed).below(nonempty.len() as u64) as usize];
    let last = *nonempty.last().expect("a window has at least one step");
    let mut segments = vec![drawn];
    if last != drawn {
        segments.push(last);
    }
    let mut steps = 0;
    for &segment in &segments {
        let (from, to) = (spec.segment_start(segment), spec.segment_start(segment + 1));
        steps += to - from;
        let (positions, velocities) = match segment {
            0 => (start.positions.clone(), start.velocities.clone()),
            s => {
                let phase = &output.boundaries[s as usize - 1];
                (phase.positions.clone(), phase.velocities.clone())
            }
        };
        let mut live = Live::new(spec, start.masses.clone(), positions, velocities, start.step + from);
        live.advance(to - from);
        let (want_positions, want_velocities) = match output.boundaries.get(segment as usize) {
            Some(phase) => (&phase.positions, &phase.velocities),
            None => (&end.positions, &end.velocities),
        };
        let ends_on =
            if segment + 1 < NBODY_SEGMENTS { format!("boundary {segment}") } else { "the end state".to_owned() };
        if task.gpu {
            if let Some(off) = state_off(want_positions, want_velocities, &live.positions, &live.velocities) {
                return Ok(Spot::failed(format!(
                    "segment {segment} (steps {from}..{to} of the window) recomputed is off {ends_on}, beyond the \
                     tolerance of a window run on a GPU: {off}"
                )));
            }
            continue;
        }
        if let Some(i) = same_bits(&live.positions, want_positions) {
            return Ok(Spot::failed(format!(
                "segment {segment} (steps {from}..{to} of the window) recomputed puts particle {i} at {:?}; \
                 {ends_on} says {:?}",
                live.positions[i], want_positions[i]
            )));
        }
        if let Some(i) = same_bits(&live.velocities, want_velocities) {
            return Ok(Spot::failed(format!(
                "segment {segment} (steps {from}..{to} of the window) recomputed gives particle {i} the velocity \
                 {:?}; {ends_on} says {:?}",
                live.velocities[i], want_velocities[i]
            )));
        }
    }
    let shown: Vec<String> = segments.iter().map(u64::to_string).collect();
    Ok(Spot {
        passed: true,
        detail: format!(
            "segments {} of {NBODY_SEGMENTS} ({steps} steps, the last always) recomputed alike {}, and both \
             energies bit for bit",
            shown.join(" and "),
            if task.gpu { "within the GPU tolerance" } else { "bit for bit" }
        ),
        work_units: n2 * steps + n2,
    })
}

/// Whether two outputs of a window are one result: byte for byte, or for
/// a window that asked for a GPU, each a valid output of the window (its
/// shape, times and start, and energies that are those of its own states
/// bit for bit) whose states at every boundary and at the end agree within
/// [`NBODY_GPU_RELATIVE_ERROR`].
pub(crate) fn outputs_agree(task: &NbodyTask, a: &[u8], b: &[u8]) -> bool {
    if a == b {
        return true;
    }
    if !task.gpu {
        return false;
    }
    let Ok(start) = task.start() else { return false };
    let spec = &task.spec;
    let valid = |bytes: &[u8]| {
        let output: NbodyOutput = serde_json::from_slice(bytes).ok()?;
        check_output(task, &start, &output).ok()?;
        let end = &output.end;
        let energy_end = energy(spec, &end.masses, &end.positions, &end.velocities);
        (output.energy_end.to_bits() == energy_end.to_bits()).then_some(output)
    };
    let (Some(a), Some(b)) = (valid(a), valid(b)) else { return false };
    if a.energy_start.to_bits() != b.energy_start.to_bits() {
        return false;
    }
    let phases = |output: &NbodyOutput| {
        let mut phases: Vec<NbodyState> = output
            .boundaries
            .iter()
            .map(|phase| NbodyState { positions: phase.positions.clone(), velocities: phase.velocities.clone() })
            .collect();
        phases.push(NbodyState { positions: output.end.positions.clone(), velocities: output.end.velocities.clone() });
        phases
    };
    phases(&a)
        .iter()
        .zip(phases(&b))
        .all(|(a, b)| state_off(&a.positions, &a.velocities, &b.positions, &b.velocities).is_none())
}

/// The input of window `task_idx` (at least 1): the previous window's
/// input with its index moved on and its state replaced by the state the
/// previous window's output ended with, which is checked first.
pub(crate) fn next_input(
    spec: &NbodySpec,
    task_idx: u64,
    previous_input: &NbodyTask,
    previous_output: &[u8],
) -> Result<NbodyTask, crate::RunError> {
    use crate::RunError;
    spec.validate().map_err(RunError::Invalid)?;
    if task_idx == 0 || task_idx >= spec.windows {
        return Err(RunError::Invalid(SpecError::invalid(
            "task_idx",
            format!(
                "must be between 1 and {} (the job has {} windows), got {task_idx}",
                spec.windows - 1,
                spec.windows
            ),
        )));
    }
    if previous_input.spec != *spec {
        return Err(RunError::Invalid(SpecError::invalid(
            "previous input",
            "belongs to another nbody job (its parameters differ from the spec's)",
        )));
    }
    if previous_input.window != task_idx - 1 {
        return Err(RunError::Invalid(SpecError::invalid(
            "previous input",
            format!(
                "is window {}'s, not window {}'s, so it does not come before window {task_idx}",
                previous_input.window,
                task_idx - 1
            ),
        )));
    }
    let start = previous_input.start().map_err(RunError::Invalid)?;
    let output: NbodyOutput = crate::spec::from_json(previous_output).map_err(|err| {
        RunError::Decode(SpecError::invalid("previous output", format!("is not an nbody window's output: {err}")))
    })?;
    check_output(previous_input, &start, &output)
        .map_err(|reason| RunError::Invalid(SpecError::invalid("previous output", reason)))?;
    Ok(NbodyTask { spec: spec.clone(), window: task_idx, state: Some(output.end), gpu: previous_input.gpu })
}

/// `result.json` (the energy at the start and at each window's end, the
/// largest relative drift, the final time), `energy.csv` (one row per
/// window, at its end) and `state.json` (the final state). Each window's
/// output must be the next in the chain: its index, and a start that is
/// the previous window's end.
pub(crate) fn assemble(spec: &NbodySpec, outputs: &[Vec<u8>]) -> Result<Vec<Artifact>, AssembleError> {
    spec.validate()?;
    let mut start = spec.initial_state();
    let mut energies: Vec<(u64, f64, f64)> = Vec::with_capacity(outputs.len());
    let mut energy_start = 0.0f64;
    for (task_idx, bytes) in outputs.iter().enumerate() {
        let bad = |reason: String| AssembleError::BadOutput { task_idx, reason };
        let output: NbodyOutput =
            serde_json::from_slice(bytes).map_err(|err| bad(format!("not an nbody window's output: {err}")))?;
        let window = task_idx as u64;
        if output.window != window {
            return Err(bad(format!(
                "is window {}'s output, where window {window}'s belongs: the chain is broken",
                output.window
            )));
        }
        if window > 0 && output.start_digest != digest(&start) {
            return Err(bad(format!(
                "window {window} does not start where window {} ended (its start's digest differs): the chain is \
                 broken",
                window - 1
            )));
        }
        let task = NbodyTask { spec: spec.clone(), window, state: None, gpu: false };
        check_output(&task, &start, &output).map_err(bad)?;
        if window == 0 {
            energy_start = output.energy_start;
        }
        energies.push((window, output.end_time, output.energy_end));
        start = output.end;
    }
    let drift = |energy: f64| {
        let change = (energy - energy_start).abs();
        if energy_start == 0.0 { change } else { change / energy_start.abs() }
    };
    let max_drift = energies.iter().map(|(_, _, energy)| drift(*energy)).fold(0.0f64, f64::max);
    let result = serde_json::json!({
        "workload": "nbody",
        "initial": spec.initial,
        "particles": spec.particles,
        "windows": spec.windows,
        "steps_per_window": spec.steps_per_window,
        "steps": spec.windows * spec.steps_per_window,
        "dt": spec.dt,
        "softening": spec.softening,
        "seed": spec.seed,
        "energy_start": energy_start,
        "energy_end": energies.iter().map(|(_, _, energy)| *energy).collect::<Vec<f64>>(),
        "max_relative_drift": max_drift,
        "final_time": start.time,
    });
    let mut csv = String::from("window,time,energy,relative_drift\n");
    for (window, time, energy) in &energies {
        // Debug formatting: the shortest digits that read back as the same
        // bits, in exponent form for small drifts.
        csv.push_str(&format!("{window},{time:?},{energy:?},{:?}\n", drift(*energy)));
    }
    Ok(vec![
        Artifact {
            name: "result.json".to_owned(),
            media_type: "application/json".to_owned(),
            bytes: serde_json::to_vec_pretty(&result).expect("a JSON value serializes"),
        },
        Artifact { name: "energy.csv".to_owned(), media_type: "text/csv".to_owned(), bytes: csv.into_bytes() },
        Artifact {
            name: "state.json".to_owned(),
            media_type: "application/json".to_owned(),
            bytes: serde_json::to_vec(&start).expect("finite numbers serialize"),
        },
    ])
}

/// A counter-based generator: particle i's `n`th number is a hash of
/// (stream, i, n), so the model does not depend on the order particles
/// are made in.
struct Draws {
    key: u64,
    n: u64,
}

impl Draws {
    fn new(stream: u64, particle: usize) -> Draws {
        Draws { key: crate::sim::mix(stream ^ (particle as u64).wrapping_mul(0xD6E8_FEB8_6659_FD93)), n: 0 }
    }

    /// Uniform in (0, 1].
    fn open01(&mut self) -> f64 {
        self.n += 1;
        let x = crate::sim::mix(self.key ^ crate::sim::mix(self.n));
        ((x >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// A vector of length `r` in a uniformly random direction.
    fn direction(&mut self, r: f64) -> [f64; 3] {
        let cos_theta = 1.0 - 2.0 * self.open01();
        let sin_theta = libm::sqrt(1.0 - cos_theta * cos_theta);
        let phi = 2.0 * std::f64::consts::PI * self.open01();
        [r * sin_theta * libm::cos(phi), r * sin_theta * libm::sin(phi), r * cos_theta]
    }
}

/// A Plummer sphere of `n` equal masses, total 1, energy about −1/4.
fn plummer(n: usize, stream: u64) -> Checkpoint {
    let velocity_scale = 1.0 / libm::sqrt(PLUMMER_SCALE);
    let mut positions = Vec::with_capacity(n);
    let mut velocities = Vec::with_capacity(n);
    for i in 0..n {
        let mut draws = Draws::new(stream, i);
        // Radius from the cumulative mass m(r) = r³ / (1 + r²)^{3/2}.
        let mass = PLUMMER_MASS_CUT * draws.open01();
        let r = 1.0 / libm::sqrt(libm::pow(mass, -2.0 / 3.0) - 1.0);
        let position = draws.direction(r);
        // Speed as a share q of the escape speed, from g(q) ∝ q²(1 − q²)^{7/2}
        // by rejection (its largest value is below 0.1).
        let mut q = 0.0;
        for _ in 0..PLUMMER_VELOCITY_TRIES {
            let (x, y) = (draws.open01(), 0.1 * draws.open01());
            if y < x * x * libm::pow(1.0 - x * x, 3.5) {
                q = x;
                break;
            }
        }
        let escape = std::f64::consts::SQRT_2 * libm::pow(1.0 + r * r, -0.25);
        let velocity = draws.direction(q * escape);
        positions.push(position.map(|x| x * PLUMMER_SCALE));
        velocities.push(velocity.map(|v| v * velocity_scale));
    }
    Checkpoint { step: 0, time: 0.0, masses: vec![1.0 / n as f64; n], positions, velocities }
}

/// A central body of mass 1/2 and a thin disc of `n` − 1 equal masses on
/// circular orbits.
fn disc(n: usize, stream: u64, softening: f64) -> Checkpoint {
    let disc_mass = 1.0 - DISC_CENTRAL_MASS;
    let (r_in2, r_out2) = (DISC_R_IN * DISC_R_IN, DISC_R_OUT * DISC_R_OUT);
    let mut masses = vec![DISC_CENTRAL_MASS];
    let mut positions = vec![[0.0; 3]];
    let mut velocities = vec![[0.0; 3]];
    for i in 1..n {
        let mut draws = Draws::new(stream, i);
        let share = draws.open01();
        let r2 = r_in2 + share * (r_out2 - r_in2);
        let r = libm::sqrt(r2);
        let phi = 2.0 * std::f64::consts::PI * draws.open01();
        let z = DISC_HALF_THICKNESS * (2.0 * draws.open01() - 1.0);
        // The mass inside r, as if it sat at the centre, pulls with the
        // softened force; the speed of a circular orbit balances it.
        let inside = DISC_CENTRAL_MASS + disc_mass * share;
        let soft2 = r2 + softening * softening;
        let speed = libm::sqrt(inside * r2 / (soft2 * libm::sqrt(soft2)));
        let (sin, cos) = (libm::sin(phi), libm::cos(phi));
        masses.push(disc_mass / (n - 1) as f64);
        positions.push([r * cos, r * sin, z]);
        velocities.push([-speed * sin, speed * cos, 0.0]);
    }
    Checkpoint { step: 0, time: 0.0, masses, positions, velocities }
}

/// Moves the state so its centre of mass sits still at the origin.
fn to_centre_of_mass_frame(state: &mut Checkpoint) {
    let total: f64 = state.masses.iter().fold(0.0, |sum, m| sum + m);
    for vectors in [&mut state.positions, &mut state.velocities] {
        let mut centre = [0.0f64; 3];
        for (m, v) in state.masses.iter().zip(vectors.iter()) {
            for k in 0..3 {
                centre[k] += m * v[k];
            }
        }
        let centre = centre.map(|c| c / total);
        for v in vectors.iter_mut() {
            for k in 0..3 {
                v[k] -= centre[k];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(particles: u32, windows: u64, steps_per_window: u64, dt: f64) -> NbodySpec {
        NbodySpec { particles, windows, steps_per_window, dt, softening: 0.01, seed: 5, initial: "plummer".into() }
    }

    fn workload(spec: &NbodySpec) -> crate::WorkloadSpec {
        crate::WorkloadSpec::Nbody(spec.clone())
    }

    /// Every window's input and output, chained through next_input.
    fn chain(spec: &NbodySpec) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let workload = workload(spec);
        let mut inputs = crate::plan(&workload).unwrap();
        assert_eq!(inputs.len(), 1);
        let mut outputs = Vec::new();
        for window in 0..spec.windows {
            let output = crate::run_task(&inputs[window as usize]).unwrap().output;
            if window + 1 < spec.windows {
                let next = crate::next_input(&workload, window + 1, &inputs[window as usize], &output).unwrap();
                inputs.push(next);
            }
            outputs.push(output);
        }
        (inputs, outputs)
    }

    fn decode(output: &[u8]) -> NbodyOutput {
        serde_json::from_slice(output).unwrap()
    }

    fn max_drift(outputs: &[Vec<u8>]) -> f64 {
        let e0 = decode(&outputs[0]).energy_start;
        outputs.iter().map(|output| ((decode(output).energy_end - e0) / e0).abs()).fold(0.0, f64::max)
    }

    fn momentum(masses: &[f64], velocities: &[[f64; 3]]) -> f64 {
        let mut p = [0.0f64; 3];
        for (m, v) in masses.iter().zip(velocities) {
            for k in 0..3 {
                p[k] += m * v[k];
            }
        }
        libm::sqrt(p[0] * p[0] + p[1] * p[1] + p[2] * p[2])
    }

    #[test]
    fn a_plummer_sphere_is_in_virial_equilibrium_at_rest_with_energy_a_quarter() {
        for seed in 0..3 {
            let spec = NbodySpec { seed, softening: 1e-6, ..spec(2048, 1, 1, 1e-3) };
            let state = spec.initial_state();
            let mut kinetic = 0.0;
            for (m, v) in state.masses.iter().zip(&state.velocities) {
                kinetic += 0.5 * m * (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
            }
            let total = energy(&spec, &state.masses, &state.positions, &state.velocities);
            let virial_ratio = kinetic / (kinetic - total);
            assert!((total + 0.25).abs() < 0.01, "seed {seed}: energy {total}");
            assert!((0.47..0.53).contains(&virial_ratio), "seed {seed}: 2K/|W| = {}", 2.0 * virial_ratio);
            let mut centre = [0.0f64; 3];
            for (m, x) in state.masses.iter().zip(&state.positions) {
                for k in 0..3 {
                    centre[k] += m * x[k];
                }
            }
            assert!(centre.iter().all(|c| c.abs() < 1e-15), "{centre:?}");
            assert!(momentum(&state.masses, &state.velocities) < 1e-16);
        }
        // Another seed, another sphere; the same seed, the same bits.
        let a = spec(64, 1, 1, 1e-3).initial_state();
        assert_eq!(a, spec(64, 1, 1, 1e-3).initial_state());
        assert_ne!(a, NbodySpec { seed: 6, ..spec(64, 1, 1, 1e-3) }.initial_state());
    }

    /// Measured for 64 particles, seed 5, ε = 0.01, 8 windows of 250 steps
    /// of 10⁻³: the largest relative drift is 1.13·10⁻⁵ (in window 1; the
    /// second half's largest is 2.4·10⁻⁶), and with half the step
    /// 2.83·10⁻⁶, four times less, as a second-order method gives.
    #[test]
    fn the_energy_drifts_boundedly_and_four_times_less_with_half_the_step() {
        let (_, outputs) = chain(&spec(64, 8, 250, 1e-3));
        let drift = max_drift(&outputs);
        assert!(drift < 2e-5, "{drift}");
        let (first, second) = outputs.split_at(4);
        let e0 = decode(&outputs[0]).energy_start;
        let half_max = |half: &[Vec<u8>]| {
            half.iter().map(|output| ((decode(output).energy_end - e0) / e0).abs()).fold(0.0, f64::max)
        };
        assert!(half_max(second) < 2.0 * half_max(first), "{} then {}", half_max(first), half_max(second));
        let (_, halved) = chain(&spec(64, 8, 500, 5e-4));
        let ratio = drift / max_drift(&halved);
        assert!((3.5..4.5).contains(&ratio), "half the step: {ratio}× less drift");
        // Assembly reports the same figures.
        let artifacts = crate::assemble(&workload(&spec(64, 8, 250, 1e-3)), &outputs, &[1; 8]).unwrap();
        let result: serde_json::Value = serde_json::from_slice(&artifacts[0].bytes).unwrap();
        assert_eq!(result["max_relative_drift"].as_f64(), Some(drift));
        assert_eq!(result["energy_start"].as_f64(), Some(e0));
        assert_eq!(result["final_time"].as_f64(), Some(2.0));
    }

    #[test]
    fn a_disc_about_a_central_body_keeps_its_energy_too() {
        let disc = NbodySpec { initial: "disc".into(), ..spec(64, 4, 250, 1e-3) };
        let state = disc.initial_state();
        assert!(momentum(&state.masses, &state.velocities) < 1e-15);
        let (_, outputs) = chain(&disc);
        let drift = max_drift(&outputs);
        // Measured: 1.5·10⁻⁵ (the energy starts at −0.35).
        assert!(drift < 3e-5, "{drift}");
        assert!(decode(&outputs[0]).energy_start < 0.0, "bound");
    }

    /// Measured: |Σ m v| grows from 6·10⁻¹⁷ to 3·10⁻¹⁶ over the 2000 steps.
    #[test]
    fn momentum_is_conserved_to_rounding() {
        let (_, outputs) = chain(&spec(64, 8, 250, 1e-3));
        for output in &outputs {
            let end = decode(output).end;
            let p = momentum(&end.masses, &end.velocities);
            assert!(p < 1e-14, "window {}: |Σ m v| = {p}", decode(output).window);
        }
    }

    #[test]
    fn a_chain_of_windows_ends_where_one_long_run_does_on_any_thread_count() {
        let chained = spec(64, 8, 250, 1e-3);
        let (inputs, outputs) = chain(&chained);
        let long = crate::run_task(&crate::plan(&workload(&spec(64, 1, 2_000, 1e-3))).unwrap()[0]).unwrap();
        assert_eq!(decode(&outputs[7]).end, decode(&long.output).end);
        assert_eq!(long.work_units, 64 * 64 * 2_000);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap();
        for input in [&inputs[0], &inputs[5]] {
            let many = crate::run_task(input).unwrap();
            let one = pool.install(|| crate::run_task(input).unwrap());
            assert_eq!(many, one);
        }
        assert!(matches!(crate::decode_task(&inputs[3]).unwrap(), crate::Decoded::BuiltIn { gpu: false }));
        assert!(crate::outputs_agree(&inputs[3], &outputs[3], &outputs[3]).unwrap());
        assert!(!crate::outputs_agree(&inputs[3], &outputs[3], &outputs[4]).unwrap());
        assert_eq!(crate::chain_length(&workload(&chained)), Some(8));
    }

    #[test]
    fn windows_shorter_than_their_segments_chain_and_check() {
        let short = spec(8, 3, 3, 1e-2);
        let (inputs, outputs) = chain(&short);
        for (input, output) in inputs.iter().zip(&outputs) {
            for seed in 0..16 {
                let spot = crate::spot_check(input, output, seed).unwrap();
                assert!(spot.passed, "{}", spot.detail);
                assert!([64 * 2, 64 * 3].contains(&spot.work_units), "{}", spot.work_units);
            }
        }
        let long = crate::run_task(&crate::plan(&workload(&spec(8, 1, 9, 1e-2))).unwrap()[0]).unwrap();
        assert_eq!(decode(&outputs[2]).end, decode(&long.output).end);
    }

    #[test]
    fn next_input_refuses_what_did_not_come_from_the_window_before() {
        let spec = spec(16, 4, 40, 1e-3);
        let workload = workload(&spec);
        let (inputs, outputs) = chain(&spec);
        let err = |result: Result<Vec<u8>, crate::RunError>| result.unwrap_err().to_string();
        // Garbled bytes.
        let garbled = err(crate::next_input(&workload, 1, &inputs[0], b"{\"window\": 0, \"end\": 7"));
        assert!(garbled.contains("previous output"), "{garbled}");
        assert!(matches!(crate::next_input(&workload, 1, &inputs[0], b"[]"), Err(crate::RunError::Decode(_))));
        // A particle short.
        let mut value: serde_json::Value = serde_json::from_slice(&outputs[0]).unwrap();
        value["end"]["positions"].as_array_mut().unwrap().pop();
        let short = err(crate::next_input(&workload, 1, &inputs[0], &serde_json::to_vec(&value).unwrap()));
        assert!(short.contains("15 positions") && short.contains("16 particles"), "{short}");
        // A mass that is not a mass, and one that changed.
        for (mass, words) in [(-1.0, "not a finite number more than 0"), (0.5, "it started with")] {
            let mut value: serde_json::Value = serde_json::from_slice(&outputs[0]).unwrap();
            value["end"]["masses"][3] = serde_json::json!(mass);
            let forged = err(crate::next_input(&workload, 1, &inputs[0], &serde_json::to_vec(&value).unwrap()));
            assert!(forged.contains(words), "{forged}");
        }
        // A number JSON cannot hold as a finite f64.
        let text = String::from_utf8(outputs[0].clone()).unwrap();
        let energy = decode(&outputs[0]).energy_end;
        let huge = text.replace(&format!("\"energy_end\":{energy}"), "\"energy_end\":1e999");
        assert_ne!(huge, text);
        assert!(crate::next_input(&workload, 1, &inputs[0], huge.as_bytes()).is_err());
        // Windows out of order.
        let skipped = err(crate::next_input(&workload, 2, &inputs[0], &outputs[0]));
        assert!(skipped.contains("window 0's, not window 1's"), "{skipped}");
        let swapped = err(crate::next_input(&workload, 2, &inputs[1], &outputs[2]));
        assert!(swapped.contains("output of window 2, not of window 1"), "{swapped}");
        let replayed = err(crate::next_input(&workload, 2, &inputs[1], &outputs[0]));
        assert!(replayed.contains("output of window 0"), "{replayed}");
        let past_the_end = err(crate::next_input(&workload, 4, &inputs[3], &outputs[3]));
        assert!(past_the_end.contains("between 1 and 3"), "{past_the_end}");
        // Another job's input.
        let other = workload_of(NbodySpec { seed: 99, ..spec.clone() });
        let foreign = err(crate::next_input(&other, 1, &inputs[0], &outputs[0]));
        assert!(foreign.contains("another nbody job"), "{foreign}");
        // An output of another start: window 1 run from a nudged state.
        let nudged = run(&NbodyTask { state: Some(nudge(&inputs[1])), ..task_of(&inputs[1]) }).unwrap().output;
        let moved = err(crate::next_input(&workload, 2, &inputs[1], &nudged));
        assert!(moved.contains("starts from another state"), "{moved}");
        // Workloads that are not chained.
        let sim = crate::WorkloadSpec::Sim(crate::SimSpec {
            model: "option".into(),
            tasks: 2,
            samples_per_task: 10,
            seed: 0,
            option: None,
            slab: None,
        });
        let not_chained = err(crate::next_input(&sim, 1, &inputs[0], &outputs[0]));
        assert!(not_chained.contains("not chained"), "{not_chained}");
        assert_eq!(crate::chain_length(&sim), None);
    }

    fn workload_of(spec: NbodySpec) -> crate::WorkloadSpec {
        crate::WorkloadSpec::Nbody(spec)
    }

    fn task_of(input: &[u8]) -> NbodyTask {
        let value: serde_json::Value = serde_json::from_slice(input).unwrap();
        assert_eq!(value["workload"], "nbody");
        NbodyTask {
            spec: serde_json::from_value(value["spec"].clone()).unwrap(),
            window: value["window"].as_u64().unwrap(),
            state: serde_json::from_value(value["state"].clone()).unwrap(),
            gpu: value["gpu"].as_bool().unwrap_or(false),
        }
    }

    /// The input's state with one coordinate moved by 10⁻⁹.
    fn nudge(input: &[u8]) -> Checkpoint {
        let mut state = task_of(input).state.unwrap();
        state.positions[2][1] += 1e-9;
        state
    }

    #[test]
    fn a_spot_check_recomputes_one_segment_and_catches_a_changed_state_or_energy() {
        let spec = spec(32, 2, 80, 1e-3);
        let (inputs, outputs) = chain(&spec);
        for (input, output) in inputs.iter().zip(&outputs) {
            for seed in 0..8 {
                let spot = crate::spot_check(input, output, seed).unwrap();
                assert!(spot.passed, "{}", spot.detail);
                // One drawn segment of 10 steps and the last (unless it was drawn).
                assert!([1, 2].map(|n| 32 * 32 * 10 * n + 32 * 32).contains(&spot.work_units), "{}", spot.work_units);
            }
        }
        let (input, honest) = (&inputs[1], decode(&outputs[1]));
        let spot = |output: &NbodyOutput, seed: u64| {
            crate::spot_check(input, &serde_json::to_vec(output).unwrap(), seed).unwrap()
        };
        // A boundary moved: found by the two segments it touches.
        let mut moved = honest.clone();
        moved.boundaries[3].velocities[7][0] *= 1.0 + 1e-12;
        for seed in 0..64 {
            let segment = Draw::new(seed).below(NBODY_SEGMENTS);
            let check = spot(&moved, seed);
            assert_eq!(
                check.passed,
                !(segment == 3 || segment == 4),
                "seed {seed}, segment {segment}: {}",
                check.detail
            );
        }
        // The end state or an energy changed: found every time.
        let mut end = honest.clone();
        end.end.positions[0][2] += 1e-9;
        let mut energy = honest.clone();
        energy.energy_end = f64::from_bits(energy.energy_end.to_bits() + 1);
        let mut start_energy = honest.clone();
        start_energy.energy_start -= 1e-6;
        for (forged, words) in
            [(&end, "end state's energy"), (&energy, "end state's energy"), (&start_energy, "start's energy")]
        {
            for seed in 0..8 {
                let check = spot(forged, seed);
                assert!(!check.passed && check.detail.contains(words), "{}", check.detail);
            }
        }
        // Cheap checks of the whole output.
        let mut late = honest.clone();
        late.end_time += 1.0;
        assert!(spot(&late, 0).detail.contains("ends at time"));
        let mut lost = honest.clone();
        lost.boundaries.pop();
        assert!(spot(&lost, 0).detail.contains("6 segment boundaries"));
        let other_window = crate::spot_check(input, &outputs[0], 0).unwrap();
        assert!(!other_window.passed && other_window.detail.contains("window 0"), "{}", other_window.detail);
        assert!(!crate::spot_check(input, b"{}", 0).unwrap().passed);
    }

    #[test]
    fn assembly_gives_energies_and_the_final_state_and_refuses_a_broken_chain() {
        let spec = spec(16, 4, 40, 1e-3);
        let workload = workload(&spec);
        let (inputs, outputs) = chain(&spec);
        let artifacts = crate::assemble(&workload, &outputs, &[1; 4]).unwrap();
        let names: Vec<&str> = artifacts.iter().map(|artifact| artifact.name.as_str()).collect();
        assert_eq!(names, ["result.json", "energy.csv", "state.json"]);
        let csv = String::from_utf8(artifacts[1].bytes.clone()).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], "window,time,energy,relative_drift");
        assert!(lines[4].starts_with("3,0.16,"), "{}", lines[4]);
        let state: Checkpoint = serde_json::from_slice(&artifacts[2].bytes).unwrap();
        assert_eq!(state, decode(&outputs[3]).end);
        assert_eq!(state.step, 160);
        let bad = |outputs: Vec<Vec<u8>>| match crate::assemble(&workload, &outputs, &[1; 4]).unwrap_err() {
            AssembleError::BadOutput { task_idx, reason } => (task_idx, reason),
            other => panic!("{other}"),
        };
        // Two windows swapped.
        let (task_idx, reason) =
            bad(vec![outputs[0].clone(), outputs[2].clone(), outputs[1].clone(), outputs[3].clone()]);
        assert_eq!(task_idx, 1);
        assert!(reason.contains("chain is broken"), "{reason}");
        // Window 2 run from another state than window 1 ended with.
        let nudged = run(&NbodyTask { state: Some(nudge(&inputs[2])), ..task_of(&inputs[2]) }).unwrap().output;
        let (task_idx, reason) = bad(vec![outputs[0].clone(), outputs[1].clone(), nudged, outputs[3].clone()]);
        assert_eq!(task_idx, 2);
        assert!(reason.contains("does not start where window 1 ended"), "{reason}");
        // Window 0 from another seed.
        let other_seed = workload_of(NbodySpec { seed: 6, ..spec.clone() });
        let other = crate::run_task(&crate::plan(&other_seed).unwrap()[0]).unwrap().output;
        let (task_idx, reason) = bad(vec![other, outputs[1].clone(), outputs[2].clone(), outputs[3].clone()]);
        assert_eq!(task_idx, 0);
        assert!(reason.contains("starts from another state"), "{reason}");
        let (task_idx, _) = bad(vec![outputs[0].clone(), outputs[1].clone(), outputs[2].clone(), b"x".to_vec()]);
        assert_eq!(task_idx, 3);
    }

    #[test]
    fn a_task_input_carries_its_state_from_window_1_on() {
        let spec = spec(4, 3, 10, 1e-3);
        let (inputs, _) = chain(&spec);
        assert!(task_of(&inputs[0]).state.is_none());
        assert!(task_of(&inputs[1]).state.is_some());
        let with_state = NbodyTask { window: 0, ..task_of(&inputs[1]) };
        assert_eq!(run(&with_state).unwrap_err().field(), Some("state"));
        let without = NbodyTask { state: None, ..task_of(&inputs[1]) };
        assert_eq!(run(&without).unwrap_err().field(), Some("state"));
        let beyond = NbodyTask { window: 3, ..task_of(&inputs[1]) };
        assert_eq!(run(&beyond).unwrap_err().field(), Some("window"));
        let misplaced = NbodyTask { window: 2, ..task_of(&inputs[1]) };
        let err = run(&misplaced).unwrap_err().to_string();
        assert!(err.contains("step 10, not step 20"), "{err}");
    }

    #[test]
    fn bad_specs_name_their_field() {
        let good = spec(64, 8, 250, 1e-3);
        let cases = [
            (NbodySpec { particles: 1, ..good.clone() }, "nbody.particles"),
            (NbodySpec { particles: 4097, ..good.clone() }, "nbody.particles"),
            (NbodySpec { windows: 0, ..good.clone() }, "nbody.windows"),
            (NbodySpec { windows: 10_001, ..good.clone() }, "nbody.windows"),
            (NbodySpec { steps_per_window: 0, ..good.clone() }, "nbody.steps_per_window"),
            (NbodySpec { dt: 0.0, ..good.clone() }, "nbody.dt"),
            (NbodySpec { dt: f64::NAN, ..good.clone() }, "nbody.dt"),
            (NbodySpec { dt: 1.5, ..good.clone() }, "nbody.dt"),
            (NbodySpec { softening: 0.0, ..good.clone() }, "nbody.softening"),
            (NbodySpec { softening: f64::INFINITY, ..good.clone() }, "nbody.softening"),
            (NbodySpec { initial: "cube".into(), ..good.clone() }, "nbody.initial"),
        ];
        for (spec, field) in cases {
            assert_eq!(spec.validate().unwrap_err().field(), Some(field), "{spec:?}");
        }
        let too_much = NbodySpec { particles: 4096, steps_per_window: 10_000, ..good.clone() };
        let err = too_much.validate().unwrap_err();
        assert_eq!(err.field(), Some("nbody.steps_per_window"));
        assert!(err.to_string().contains("4096² × 10000 = 167772160000 pairwise forces"), "{err}");
        assert!(NbodySpec { particles: 4096, steps_per_window: 5_000, ..good }.validate().is_ok());
    }

    #[test]
    fn a_job_file_names_nbody_and_a_sealed_one_is_refused() {
        let text = "[job]\nname = \"n\"\nworkload = \"nbody\"\n[nbody]\nparticles = 8\nwindows = 2\n\
                    steps_per_window = 10\ndt = 0.01\n";
        let job = crate::parse_job_file_with(text, &mut |_: &str| Err("no files".into())).unwrap();
        let crate::WorkloadSpec::Nbody(spec) = job.workload().unwrap() else { panic!("an nbody job") };
        assert_eq!((spec.softening, spec.seed, spec.initial.as_str()), (0.01, 0, "plummer"));
        let json = serde_json::to_vec(&job).unwrap();
        assert_eq!(crate::parse_job_json(&json).unwrap(), job);
        let sealed = text.replace("workload = \"nbody\"", "workload = \"nbody\"\nsealed = true");
        let err = crate::parse_job_file_with(&sealed, &mut |_: &str| Err("no files".into())).unwrap_err();
        assert_eq!(err.field(), Some("job.sealed"));
        let other = text.replace("workload = \"nbody\"", "workload = \"sim\"");
        let err = crate::parse_job_file_with(&other, &mut |_: &str| Err("no files".into())).unwrap_err();
        assert!(err.to_string().contains("[nbody]") || err.field() == Some("sim"), "{err}");
    }

    /// A device whose nbody kernel gives the CPU's states with every
    /// position scaled by `1 + scale` (from stop `from` on), and `stops`
    /// of them.
    struct Kernel {
        scale: f64,
        from: usize,
        stops: usize,
    }

    impl Accelerator for Kernel {
        fn device(&self) -> &str {
            "gpu2"
        }

        fn hash_search(&self, _: &crate::HashSearch<'_>) -> Result<Option<crate::HashFinds>, AccelError> {
            Ok(None)
        }

        fn nbody_states(&self, task: &NbodyKernelTask) -> Result<Option<Vec<NbodyState>>, AccelError> {
            let mut states = task.cpu_states(task.stops.len());
            for state in states.iter_mut().skip(self.from) {
                for x in state.positions.iter_mut().flatten() {
                    *x *= 1.0 + self.scale;
                }
            }
            states.truncate(self.stops);
            Ok(Some(states))
        }
    }

    fn gpu_chain(spec: &NbodySpec, kernel: &Kernel) -> (Vec<Vec<u8>>, Vec<crate::Ran>) {
        let workload = workload(spec);
        let mut inputs = crate::plan_on(&workload, DeviceChoice::Gpu).unwrap();
        let mut runs: Vec<crate::Ran> = Vec::new();
        for window in 0..spec.windows as usize {
            let ran = crate::run_task_on(&inputs[window], Some(kernel)).unwrap();
            if window + 1 < spec.windows as usize {
                inputs.push(crate::next_input(&workload, window as u64 + 1, &inputs[window], &ran.run.output).unwrap());
            }
            runs.push(ran);
        }
        (inputs, runs)
    }

    fn spec_of(windows: u64, steps_per_window: u64) -> NbodySpec {
        spec(64, windows, steps_per_window, 1e-3)
    }

    #[test]
    fn a_kernel_within_tolerance_runs_the_windows_and_its_outputs_pass_for_the_cpu_s() {
        let spec = spec(64, 3, 40, 1e-3);
        let (inputs, runs) = gpu_chain(&spec, &Kernel { scale: 1e-9, from: 0, stops: usize::MAX });
        for (window, (input, ran)) in inputs.iter().zip(&runs).enumerate() {
            assert!(matches!(crate::decode_task(input).unwrap(), crate::Decoded::BuiltIn { gpu: true }));
            assert!(crate::compares_within_tolerance(input));
            assert_eq!((ran.device.as_deref(), &ran.accel_error), (Some("gpu2"), &None), "window {window}");
            let cpu = crate::run_task(input).unwrap().output;
            assert_ne!(ran.run.output, cpu, "other bits");
            assert!(crate::outputs_agree(input, &ran.run.output, &cpu).unwrap());
            assert!(crate::outputs_agree(input, &cpu, &ran.run.output).unwrap());
            for seed in 0..4 {
                let spot = crate::spot_check(input, &ran.run.output, seed).unwrap();
                assert!(spot.passed && spot.detail.contains("within the GPU tolerance"), "{}", spot.detail);
            }
            // Its energies are the CPU's of its own states.
            let output = decode(&ran.run.output);
            let end = &output.end;
            assert_eq!(output.energy_end, energy(&spec, &end.masses, &end.positions, &end.velocities));
        }
        let artifacts =
            crate::assemble(&workload(&spec), &runs.iter().map(|r| r.run.output.clone()).collect::<Vec<_>>(), &[1; 3])
                .unwrap();
        assert_eq!(artifacts.len(), 3);
        // Windows shorter than their segments read back fewer states.
        let short = NbodySpec { particles: 5, ..spec_of(2, 5) };
        let (inputs, runs) = gpu_chain(&short, &Kernel { scale: 0.0, from: 0, stops: usize::MAX });
        for (input, ran) in inputs.iter().zip(&runs) {
            assert_eq!((ran.device.as_deref(), &ran.accel_error), (Some("gpu2"), &None));
            assert_eq!(ran.run.output, crate::run_task(input).unwrap().output, "the CPU's steps, the CPU's bits");
        }
        // A job on the CPU never goes to the kernel and compares bit for bit.
        let cpu_input = crate::plan(&workload(&spec)).unwrap().remove(0);
        let ran = crate::run_task_on(&cpu_input, Some(&Kernel { scale: 0.0, from: 0, stops: usize::MAX })).unwrap();
        assert_eq!(ran.device, None);
        assert!(!crate::compares_within_tolerance(&cpu_input));
    }

    #[test]
    fn a_kernel_off_in_its_first_step_or_short_of_states_leaves_the_window_to_the_cpu() {
        let spec = spec(64, 1, 40, 1e-3);
        let input = crate::plan_on(&workload(&spec), DeviceChoice::Gpu).unwrap().remove(0);
        let cpu = crate::run_task(&input).unwrap();
        for (kernel, words) in [
            (Kernel { scale: 1e-4, from: 0, stops: usize::MAX }, "after 1 step(s), against the CPU's: particle"),
            (Kernel { scale: 0.0, from: 0, stops: 3 }, "3 states for 9 stops"),
            (Kernel { scale: f64::NAN, from: 4, stops: usize::MAX }, "does not hold 64 finite"),
        ] {
            let ran = crate::run_task_on(&input, Some(&kernel)).unwrap();
            assert_eq!((ran.device, &ran.run), (None, &cpu));
            let err = ran.accel_error.expect("reported").to_string();
            assert!(
                err.starts_with("gpu2: its nbody kernel's states do not check out") && err.contains(words),
                "{err}"
            );
        }
    }

    #[test]
    fn a_window_off_beyond_the_tolerance_after_its_first_step_fails_its_spot_check_and_its_replica() {
        let spec = spec(64, 1, 40, 1e-3);
        // Right in its first step and at every boundary, its end state 10⁻⁵
        // off: the worker's own check passes it, the coordinator's do not
        // (the last segment, which ends on the state the next window starts
        // from, is always recomputed).
        let (inputs, runs) = gpu_chain(&spec, &Kernel { scale: 1e-5, from: 8, stops: usize::MAX });
        let (input, output) = (&inputs[0], &runs[0].run.output);
        assert_eq!(runs[0].device.as_deref(), Some("gpu2"));
        let cpu = crate::run_task(input).unwrap().output;
        assert!(!crate::outputs_agree(input, output, &cpu).unwrap());
        for seed in 0..4 {
            let spot = crate::spot_check(input, output, seed).unwrap();
            assert!(!spot.passed && spot.detail.contains("beyond the tolerance"), "{}", spot.detail);
        }
        // An output whose energy is not its states' does not agree either.
        let mut forged = decode(&cpu);
        forged.energy_end += 1e-12;
        assert!(!crate::outputs_agree(input, &serde_json::to_vec(&forged).unwrap(), &cpu).unwrap());
        assert!(!crate::outputs_agree(input, b"{}", &cpu).unwrap());
    }

    #[test]
    fn states_agree_within_the_tolerance_and_no_further() {
        let start = spec(64, 1, 1, 1e-3).initial_state();
        let (x, v) = (&start.positions, &start.velocities);
        assert_eq!(state_off(x, v, x, v), None);
        let moved = |by: f64| {
            let mut x = x.clone();
            x[7][2] += by * x[7][2].abs().max(1.0);
            x
        };
        assert_eq!(state_off(&moved(1e-8), v, x, v), None);
        let off = state_off(&moved(1e-4), v, x, v).expect("off");
        assert!(off.starts_with("particle 7's position"), "{off}");
        let mut nan = v.clone();
        nan[3][0] = f64::NAN;
        assert!(state_off(x, &nan, x, v).unwrap().starts_with("particle 3's velocity"));
        assert!(state_off(&x[1..], v, x, v).unwrap().contains("63 positions"));
    }
}
