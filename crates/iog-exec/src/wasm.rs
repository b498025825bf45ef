//! The WebAssembly executor: one wasmtime engine per worker, a fresh store
//! (memory, fuel, WASI context) per task, compiled modules cached by digest.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::{Config, Engine, Linker, Module, ResourceLimiter, Store, Trap};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{FsPerms, HostMonotonicClock, HostWallClock, I32Exit, WasiCtxBuilder};

use iog_workloads::{BUNDLE_STDOUT, Bundle, WasmLimits};

use crate::out::{OutError, collect_out, dir_bytes_over, tail};

/// How often the wall-clock limit is checked: the engine's epoch advances
/// this often, and a module runs at most one tick past its limit.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);
/// The time a module's clock shows, always: 2000-01-01T00:00:00Z. A clock
/// that moved would make outputs differ between replicas.
pub const FIXED_WALL_CLOCK_S: u64 = 946_684_800;
/// Longest input file name.
pub const INPUT_NAME_BYTES_MAX: usize = 255;
/// Most entries a module's tables may hold.
const TABLE_ELEMENTS_MAX: usize = 1 << 20;
/// Compiled modules kept, most recently used first.
const MODULES_CACHED: usize = 8;
/// Ticks between looks at how much a running module has written to `/out`.
const OUT_CHECK_TICKS: u32 = 10;

/// One task for a module.
#[derive(Debug, Clone)]
pub struct WasmTask<'a> {
    /// The module's bytes (binary WebAssembly, or its text format).
    pub module: &'a [u8],
    /// The name it sees as `argv[0]`.
    pub name: &'a str,
    /// `argv[1..]`.
    pub args: &'a [String],
    /// Its environment, besides `IOG_TASK_INDEX` and `IOG_N_TASKS`.
    pub env: &'a [(String, String)],
    /// Files it finds in `/in`, by name (no directories).
    pub inputs: &'a [(String, Vec<u8>)],
    pub task_idx: u32,
    pub n_tasks: u32,
    /// Where its random bytes come from; the same seed gives the same bytes.
    pub seed: [u8; 32],
    /// Set to stop the run (its lease was revoked, the worker is stopping):
    /// the module is stopped within an [`EPOCH_TICK`] and the run ends with
    /// [`WasmError::Cancelled`].
    pub cancel: Option<Arc<AtomicBool>>,
}

/// What a run that ended well produced.
#[derive(Debug, Clone)]
pub struct WasmRun {
    /// Its files in `/out` (as `out/<path>`) and its standard output.
    pub output: Bundle,
    /// Instructions it executed.
    pub fuel_used: u64,
    /// How long it ran, compile time excluded.
    pub elapsed: Duration,
    /// How long compiling the module took; zero when it was cached.
    pub compile: Duration,
}

/// Why a module did not run to a good end. Each says what to change.
#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    #[error("the module is not valid WebAssembly: {0}")]
    BadModule(String),
    #[error("the module cannot run as a WASI preview 1 command: {0}")]
    NotACommand(String),
    #[error("input file name {name:?} is not allowed: use 1 to {INPUT_NAME_BYTES_MAX} bytes, no `/`, not `.` or `..`")]
    BadInputName { name: String },
    #[error(
        "the module used its whole budget of {fuel} instructions; give the job more fuel (up to the worker's \
         limit) or split the work into more tasks{}",
        quote(stderr_tail)
    )]
    OutOfFuel { fuel: u64, stderr_tail: String },
    #[error(
        "the module tried to grow its memory past its cap of {memory_bytes} bytes; give the job more memory \
         (up to the worker's limit) or use less{}",
        quote(stderr_tail)
    )]
    MemoryCap { memory_bytes: u64, stderr_tail: String },
    #[error("the module ran past its wall-clock limit of {wall_ms} ms and was stopped{}", quote(stderr_tail))]
    WallClock { wall_ms: u64, stderr_tail: String },
    #[error("the module exited with code {code}{}", quote(stderr_tail))]
    Exit { code: i32, stderr_tail: String },
    #[error("the module trapped: {message}{}", quote(stderr_tail))]
    Trap { message: String, stderr_tail: String },
    #[error("the module wrote more than {max_bytes} bytes of output (files in /out and standard output)")]
    OutputTooLarge { max_bytes: u64 },
    #[error("the module left {found} in /out, which holds only regular files and directories")]
    OddOutput { found: String },
    #[error("the run was cancelled (its lease ended or the worker is stopping)")]
    Cancelled,
    #[error("preparing or reading the task's directories failed: {0}")]
    Io(#[from] std::io::Error),
}

fn quote(stderr_tail: &str) -> String {
    let tail = stderr_tail.trim();
    if tail.is_empty() { String::new() } else { format!("; its standard error ends: {tail}") }
}

/// Runs WebAssembly modules, each task in a store of its own.
pub struct WasmExecutor {
    engine: Engine,
    linker: Linker<Guest>,
    modules: Mutex<VecDeque<([u8; 32], Module)>>,
    ticking: Arc<AtomicBool>,
}

impl Drop for WasmExecutor {
    fn drop(&mut self) {
        self.ticking.store(false, Ordering::Relaxed);
    }
}

/// What a task's store holds.
struct Guest {
    wasi: WasiP1Ctx,
    limiter: Limiter,
}

/// Caps linear memory and tables, and remembers when it refused.
struct Limiter {
    memory_bytes: usize,
    refused: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let allowed = desired <= self.memory_bytes;
        self.refused |= !allowed;
        Ok(allowed)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_MAX)
    }
}

/// A clock that stands still.
struct FixedClock;

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::from_secs(FIXED_WALL_CLOCK_S)
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// Random bytes from a seed: blake3's extendable output.
struct SeededRandom(blake3::OutputReader);

impl SeededRandom {
    fn new(seed: &[u8; 32], purpose: &str) -> SeededRandom {
        SeededRandom(blake3::Hasher::new_keyed(seed).update(purpose.as_bytes()).finalize_xof())
    }
}

impl rand_core::TryRng for SeededRandom {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0; 4];
        self.0.fill(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0; 8];
        self.0.fill(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.0.fill(dst);
        Ok(())
    }
}

impl WasmExecutor {
    /// An engine that counts fuel, can be interrupted, and computes floats
    /// the same on every machine (NaNs canonicalised), with a thread that
    /// advances its epoch every [`EPOCH_TICK`].
    pub fn new() -> Result<WasmExecutor, WasmError> {
        let mut config = Config::new();
        config.consume_fuel(true);
        config.epoch_interruption(true);
        config.cranelift_nan_canonicalization(true);
        let engine = Engine::new(&config).map_err(|err| WasmError::NotACommand(format!("{err:#}")))?;
        let mut linker: Linker<Guest> = Linker::new(&engine);
        p1::add_to_linker_sync(&mut linker, |guest: &mut Guest| &mut guest.wasi)
            .map_err(|err| WasmError::NotACommand(format!("{err:#}")))?;
        let ticking = Arc::new(AtomicBool::new(true));
        let (ticker, running) = (engine.clone(), ticking.clone());
        std::thread::Builder::new().name("iog-wasm-epoch".to_owned()).spawn(move || {
            while running.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                ticker.increment_epoch();
            }
        })?;
        Ok(WasmExecutor { engine, linker, modules: Mutex::new(VecDeque::new()), ticking })
    }

    /// The compiled module for these bytes, from the cache or compiled now
    /// (with how long that took).
    fn module(&self, bytes: &[u8]) -> Result<(Module, Duration), WasmError> {
        let digest = *blake3::hash(bytes).as_bytes();
        {
            let mut modules = self.modules.lock().expect("module cache lock");
            if let Some(at) = modules.iter().position(|(d, _)| *d == digest) {
                let entry = modules.remove(at).expect("the position exists");
                let module = entry.1.clone();
                modules.push_front(entry);
                return Ok((module, Duration::ZERO));
            }
        }
        let started = Instant::now();
        let module = Module::new(&self.engine, bytes).map_err(|err| WasmError::BadModule(format!("{err:#}")))?;
        let compile = started.elapsed();
        let mut modules = self.modules.lock().expect("module cache lock");
        modules.push_front((digest, module.clone()));
        modules.truncate(MODULES_CACHED);
        Ok((module, compile))
    }

    /// Runs `task` under `limits` in `work_dir` (which must be empty or
    /// absent; it gets `in/` and `out/`, and is left for the caller to
    /// remove). Blocks its thread for the run: call it from a thread that
    /// may block (a tokio runtime's `spawn_blocking`, not its workers).
    pub fn run(&self, task: &WasmTask<'_>, limits: &WasmLimits, work_dir: &Path) -> Result<WasmRun, WasmError> {
        let (module, compile) = self.module(task.module)?;
        let (in_dir, out_dir) = (work_dir.join("in"), work_dir.join("out"));
        std::fs::create_dir_all(&in_dir)?;
        std::fs::create_dir_all(&out_dir)?;
        for (name, bytes) in task.inputs {
            let bad = name.is_empty()
                || name.len() > INPUT_NAME_BYTES_MAX
                || name.contains(['/', '\\', '\0'])
                || name == "."
                || name == "..";
            if bad {
                return Err(WasmError::BadInputName { name: name.clone() });
            }
            std::fs::write(in_dir.join(name), bytes)?;
        }

        let output_max = usize::try_from(limits.output_bytes).unwrap_or(usize::MAX);
        let stdout = MemoryOutputPipe::new(output_max);
        let stderr = MemoryOutputPipe::new(64 << 10);
        let mut wasi = WasiCtxBuilder::new();
        wasi.arg(task.name)
            .args(task.args)
            .envs(task.env)
            .env("IOG_TASK_INDEX", task.task_idx.to_string())
            .env("IOG_N_TASKS", task.n_tasks.to_string())
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .wall_clock(FixedClock)
            .monotonic_clock(FixedClock)
            .secure_random(SeededRandom::new(&task.seed, "iog wasm secure random"))
            .insecure_random(SeededRandom::new(&task.seed, "iog wasm insecure random"))
            .insecure_random_seed(u128::from_le_bytes(task.seed[..16].try_into().expect("16 bytes")))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        wasi.preopened_dir(&in_dir, "/in", FsPerms::ReadOnly)
            .map_err(|err| WasmError::Io(std::io::Error::other(format!("{err:#}"))))?;
        wasi.preopened_dir(&out_dir, "/out", FsPerms::ReadWrite)
            .map_err(|err| WasmError::Io(std::io::Error::other(format!("{err:#}"))))?;
        let memory_bytes = usize::try_from(limits.memory_bytes).unwrap_or(usize::MAX);
        let guest = Guest { wasi: wasi.build_p1(), limiter: Limiter { memory_bytes, refused: false } };
        let mut store = Store::new(&self.engine, guest);
        store.limiter(|guest| &mut guest.limiter);
        store.set_fuel(limits.fuel).map_err(|err| WasmError::NotACommand(format!("{err:#}")))?;
        // Every tick: stop a cancelled run, or one past its wall clock;
        // every few ticks, one that has written more to /out than it may,
        // so a module cannot fill the disk before the run ends.
        let deadline = Instant::now() + Duration::from_millis(limits.wall_ms);
        let cancel = task.cancel.clone();
        let overflowed = Arc::new(AtomicBool::new(false));
        let (watched, out_max, overflow) = (out_dir.clone(), limits.output_bytes, overflowed.clone());
        let mut ticks = 0u32;
        store.epoch_deadline_callback(move |_| {
            if cancel.as_ref().is_some_and(|cancel| cancel.load(Ordering::Relaxed)) || Instant::now() >= deadline {
                return Err(wasmtime::Error::new(Trap::Interrupt));
            }
            ticks = ticks.wrapping_add(1);
            if ticks.is_multiple_of(OUT_CHECK_TICKS) && dir_bytes_over(&watched, out_max) {
                overflow.store(true, Ordering::Relaxed);
                return Err(wasmtime::Error::new(Trap::Interrupt));
            }
            Ok(wasmtime::UpdateDeadline::Continue(1))
        });
        store.set_epoch_deadline(1);

        let started = Instant::now();
        let result = self
            .linker
            .instantiate(&mut store, &module)
            .and_then(|instance| instance.get_typed_func::<(), ()>(&mut store, "_start"))
            .map_err(|err| (err, false))
            .and_then(|start| start.call(&mut store, ()).map_err(|err| (err, true)));
        let elapsed = started.elapsed();
        let fuel_used = limits.fuel.saturating_sub(store.get_fuel().unwrap_or(0));
        let stderr_tail = tail(&stderr.contents());
        if let Err((err, started)) = result {
            if let Some(exit) = err.downcast_ref::<I32Exit>() {
                if exit.0 != 0 {
                    return Err(WasmError::Exit { code: exit.0, stderr_tail });
                }
            } else {
                // Fuel and the clock first: a module may have handled a
                // refused grow and run on.
                let refused = store.data().limiter.refused;
                let cancelled = task.cancel.as_ref().is_some_and(|cancel| cancel.load(Ordering::Relaxed));
                return Err(match err.downcast_ref::<Trap>() {
                    Some(Trap::Interrupt) if cancelled => WasmError::Cancelled,
                    Some(Trap::Interrupt) if overflowed.load(Ordering::Relaxed) => {
                        WasmError::OutputTooLarge { max_bytes: limits.output_bytes }
                    }
                    Some(Trap::OutOfFuel) => WasmError::OutOfFuel { fuel: limits.fuel, stderr_tail },
                    Some(Trap::Interrupt) => WasmError::WallClock { wall_ms: limits.wall_ms, stderr_tail },
                    _ if refused => WasmError::MemoryCap { memory_bytes: limits.memory_bytes, stderr_tail },
                    Some(trap) => WasmError::Trap { message: trap.to_string(), stderr_tail },
                    None if !started => WasmError::NotACommand(format!("{err:#}")),
                    None => WasmError::Trap { message: format!("{err:#}"), stderr_tail },
                });
            }
        }
        drop(store);

        let mut output = Bundle::default();
        let stdout = stdout.contents();
        if !stdout.is_empty() {
            output.entries.insert(BUNDLE_STDOUT.to_owned(), stdout.to_vec());
        }
        let mut total = stdout.len() as u64;
        collect_out(&out_dir, &out_dir, &mut output, &mut total, limits.output_bytes)?;
        Ok(WasmRun { output, fuel_used, elapsed, compile })
    }
}

impl From<OutError> for WasmError {
    fn from(err: OutError) -> WasmError {
        match err {
            OutError::TooLarge { max_bytes } => WasmError::OutputTooLarge { max_bytes },
            OutError::Odd { found } => WasmError::OddOutput { found },
            OutError::Io(err) => WasmError::Io(err),
        }
    }
}
