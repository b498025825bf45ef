//! What the WebAssembly executor costs per task, on this machine:
//!
//! - compiling a module (once per module and worker: it is cached);
//! - a task of a cached module that does almost nothing (fresh store, WASI
//!   context, `in/` and `out/` directories, output collected): the
//!   per-task overhead;
//! - the Monte Carlo example's sampling rate in the sandbox.
//!
//! `cargo run --release -p iog-exec --example wasm_overhead [tasks]`

use std::time::{Duration, Instant};

use iog_exec::{WasmExecutor, WasmLimits, WasmTask};

const PROBE: &[u8] = include_bytes!("../../../examples/wasm/sandbox-probe.wasm");
const MONTECARLO: &[u8] = include_bytes!("../../../examples/wasm/montecarlo.wasm");

fn run(executor: &WasmExecutor, module: &[u8], args: &[&str], task_idx: u32) -> iog_exec::WasmRun {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let task = WasmTask {
        module,
        name: "m.wasm",
        args: &args,
        env: &[],
        inputs: &[],
        task_idx,
        n_tasks: u32::MAX,
        seed: [1; 32],
        cancel: None,
    };
    executor.run(&task, &WasmLimits::default(), dir.path()).expect("the module runs")
}

fn main() {
    let tasks: u32 = std::env::args().nth(1).map_or(200, |n| n.parse().expect("a task count"));
    let executor = WasmExecutor::new().expect("a wasm engine");
    let probe_args: &[&str] = &["ok", "x"];
    let mc_args: &[&str] = &["--samples", "1"];
    for (name, module, args) in [("sandbox-probe.wasm", PROBE, probe_args), ("montecarlo.wasm", MONTECARLO, mc_args)] {
        let fresh = WasmExecutor::new().expect("a wasm engine");
        let first = run(&fresh, module, args, 0);
        println!("compile {name} ({} KiB): {:.1} ms", module.len() / 1024, first.compile.as_secs_f64() * 1e3);
    }

    run(&executor, PROBE, &["ok", "warm"], 0);
    let mut per_task = Vec::new();
    let started = Instant::now();
    for idx in 0..tasks {
        let t = Instant::now();
        run(&executor, PROBE, &["ok", "x"], idx);
        per_task.push(t.elapsed());
    }
    let total = started.elapsed();
    per_task.sort();
    let pct = |p: usize| per_task[(per_task.len() * p / 100).min(per_task.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "cached no-op task, {tasks} in a row: {:.0} tasks/s; per task p50 {:.2} ms, p99 {:.2} ms \
         (store, WASI context, directories, output)",
        f64::from(tasks) / total.as_secs_f64(),
        pct(50),
        pct(99)
    );

    let samples = 100_000_000u64;
    let arg = samples.to_string();
    let run_mc = run(&executor, MONTECARLO, &["--samples", &arg], 0);
    let secs = run_mc.elapsed.max(Duration::from_micros(1)).as_secs_f64();
    println!(
        "montecarlo, {samples} samples in the sandbox: {:.0} ms, {:.0} M samples/s, {:.2} G instructions (fuel)",
        secs * 1e3,
        samples as f64 / secs / 1e6,
        run_mc.fuel_used as f64 / 1e9
    );
}
