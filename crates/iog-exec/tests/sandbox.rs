//! The WebAssembly sandbox against modules that misbehave: the checked-in
//! `examples/wasm/sandbox-probe.wasm` (built from its source beside it by
//! `scripts/build-wasm-examples.sh`) tries, on request, to loop forever,
//! allocate past its cap, read the worker's files, write outside `/out`
//! and open a connection. Each is stopped with an error that says what
//! happened, and the same executor goes on serving.
#![cfg(feature = "wasm")]

use std::time::{Duration, Instant};

use iog_exec::{Bundle, WasmError, WasmExecutor, WasmLimits, WasmRun, WasmTask};

const PROBE: &[u8] = include_bytes!("../../../examples/wasm/sandbox-probe.wasm");
const MONTECARLO: &[u8] = include_bytes!("../../../examples/wasm/montecarlo.wasm");

fn limits() -> WasmLimits {
    WasmLimits { fuel: 2_000_000_000, memory_bytes: 64 << 20, wall_ms: 10_000, output_bytes: 1 << 20 }
}

fn run_with(
    executor: &WasmExecutor,
    module: &[u8],
    args: &[&str],
    inputs: &[(String, Vec<u8>)],
    limits: &WasmLimits,
) -> Result<WasmRun, WasmError> {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let dir = tempfile::tempdir().unwrap();
    let task = WasmTask {
        module,
        name: "probe.wasm",
        args: &args,
        env: &[],
        inputs,
        task_idx: 0,
        n_tasks: 1,
        seed: [7; 32],
        cancel: None,
    };
    executor.run(&task, limits, dir.path())
}

fn probe(executor: &WasmExecutor, args: &[&str]) -> Result<WasmRun, WasmError> {
    run_with(executor, PROBE, args, &[], &limits())
}

fn out_file<'a>(bundle: &'a Bundle, name: &str) -> &'a [u8] {
    bundle.entries.get(&format!("out/{name}")).unwrap_or_else(|| panic!("no out/{name} in {bundle:?}"))
}

#[test]
fn a_module_writes_its_output_and_sees_only_its_inputs() {
    let executor = WasmExecutor::new().unwrap();
    let run = probe(&executor, &["ok", "hello from the sandbox"]).unwrap();
    assert_eq!(out_file(&run.output, "ok.txt"), b"hello from the sandbox");
    assert!(run.fuel_used > 0 && run.compile > Duration::ZERO);
    // The second run of the same module is not compiled again.
    assert_eq!(probe(&executor, &["ok", "again"]).unwrap().compile, Duration::ZERO);

    let inputs = vec![("a.txt".to_owned(), b"alpha".to_vec()), ("b.bin".to_owned(), vec![0, 1, 2])];
    let run = run_with(&executor, PROBE, &["echo-input"], &inputs, &limits()).unwrap();
    assert_eq!(out_file(&run.output, "a.txt"), b"alpha");
    assert_eq!(out_file(&run.output, "b.bin"), [0, 1, 2]);
    let run = run_with(&executor, PROBE, &["read", "/in/a.txt"], &inputs, &limits()).unwrap();
    assert_eq!(out_file(&run.output, "read.txt"), b"5");
}

#[test]
fn a_module_that_loops_forever_is_stopped_by_fuel_or_the_clock() {
    let executor = WasmExecutor::new().unwrap();
    let err = probe(&executor, &["loop"]).unwrap_err();
    assert!(matches!(err, WasmError::OutOfFuel { fuel: 2_000_000_000, .. }), "{err}");
    assert!(err.to_string().contains("give the job more fuel"), "{err}");

    let by_clock = WasmLimits { fuel: u64::MAX / 2, wall_ms: 300, ..limits() };
    let started = Instant::now();
    let err = run_with(&executor, PROBE, &["loop"], &[], &by_clock).unwrap_err();
    assert!(matches!(err, WasmError::WallClock { wall_ms: 300, .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "stopped late: {:?}", started.elapsed());
    // The executor keeps serving.
    assert!(probe(&executor, &["ok", "still here"]).is_ok());
}

#[test]
fn a_module_that_allocates_past_its_cap_is_stopped() {
    let executor = WasmExecutor::new().unwrap();
    let run = probe(&executor, &["alloc", "8"]).unwrap();
    assert!(!out_file(&run.output, "alloc.txt").is_empty());
    let err = probe(&executor, &["alloc", "256"]).unwrap_err();
    assert!(matches!(err, WasmError::MemoryCap { memory_bytes, .. } if memory_bytes == 64 << 20), "{err}");
    assert!(err.to_string().contains("give the job more memory"), "{err}");
    assert!(probe(&executor, &["ok", "still here"]).is_ok());
}

#[test]
fn a_module_cannot_read_or_write_outside_its_directories_nor_open_the_network() {
    let executor = WasmExecutor::new().unwrap();
    // A file the worker can read, in a directory the module is not given.
    let secret = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret.path(), b"identity key").unwrap();
    let secret_path = secret.path().to_str().unwrap();
    for path in [secret_path, "/etc/passwd", "/in/../../etc/passwd", "/out/../in/../../etc/hostname"] {
        let err = probe(&executor, &["read", path]).unwrap_err();
        assert!(
            matches!(&err, WasmError::Exit { code: 3, stderr_tail } if stderr_tail.contains("read failed")),
            "{path}: {err}"
        );
    }
    for path in ["/in/new.txt", "/tmp/escape.txt", "/out/../escape.txt"] {
        let err = probe(&executor, &["write", path, "x"]).unwrap_err();
        assert!(
            matches!(&err, WasmError::Exit { code: 5, stderr_tail } if stderr_tail.contains("write failed")),
            "{path}: {err}"
        );
    }

    // A real listener on loopback: the module cannot reach it.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let err = probe(&executor, &["net", &addr]).unwrap_err();
    assert!(matches!(&err, WasmError::Exit { code: 4, stderr_tail } if stderr_tail.contains("net failed")), "{err}");
    assert!(listener.accept().is_err(), "the module connected to {addr}");
}

#[test]
fn exits_traps_bad_modules_and_large_outputs_are_reported() {
    let executor = WasmExecutor::new().unwrap();
    let err = probe(&executor, &["exit", "7"]).unwrap_err();
    assert!(
        matches!(&err, WasmError::Exit { code: 7, stderr_tail } if stderr_tail.contains("exiting with 7")),
        "{err}"
    );
    assert!(probe(&executor, &["exit", "0"]).is_ok());

    let err = run_with(&executor, b"\0asm but not really", &[], &[], &limits()).unwrap_err();
    assert!(matches!(err, WasmError::BadModule(_)), "{err}");
    let no_start = br#"(module (func (export "main")))"#;
    let err = run_with(&executor, no_start, &[], &[], &limits()).unwrap_err();
    assert!(matches!(err, WasmError::NotACommand(_)), "{err}");
    let traps = br#"(module (func (export "_start") unreachable))"#;
    let err = run_with(&executor, traps, &[], &[], &limits()).unwrap_err();
    assert!(matches!(err, WasmError::Trap { .. }), "{err}");

    let tiny = WasmLimits { output_bytes: 4, ..limits() };
    let err = run_with(&executor, PROBE, &["ok", "more than four bytes"], &[], &tiny).unwrap_err();
    assert!(matches!(err, WasmError::OutputTooLarge { max_bytes: 4 }), "{err}");

    let bad_name = vec![("../x".to_owned(), vec![1])];
    let err = run_with(&executor, PROBE, &["ok", "x"], &bad_name, &limits()).unwrap_err();
    assert!(matches!(err, WasmError::BadInputName { .. }), "{err}");
}

#[test]
fn the_monte_carlo_example_is_deterministic_per_task() {
    let executor = WasmExecutor::new().unwrap();
    let run_task = |task_idx: u32| {
        let dir = tempfile::tempdir().unwrap();
        let args = vec!["--samples".to_owned(), "200000".to_owned(), "--seed".to_owned(), "42".to_owned()];
        let task = WasmTask {
            module: MONTECARLO,
            name: "montecarlo.wasm",
            args: &args,
            env: &[],
            inputs: &[],
            task_idx,
            n_tasks: 4,
            seed: [task_idx as u8; 32],
            cancel: None,
        };
        executor.run(&task, &limits(), dir.path()).unwrap().output.to_tar()
    };
    let first = run_task(0);
    assert_eq!(first, run_task(0), "the same task gives the same bytes");
    assert_ne!(first, run_task(1), "another task samples other points");
    let bundle = Bundle::from_tar(&first, 1 << 20).unwrap();
    let result = String::from_utf8(out_file(&bundle, "result.json").to_vec()).unwrap();
    let estimate: f64 = result.split("\"estimate\":").nth(1).unwrap().trim_end_matches(['}', '\n']).parse().unwrap();
    assert!((estimate - std::f64::consts::PI).abs() < 0.05, "{result}");
    assert!(result.contains("\"samples\":200000"), "{result}");
}

#[test]
fn a_cancelled_run_stops_within_ticks_and_says_so() {
    let executor = WasmExecutor::new().unwrap();
    let cancel = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = cancel.clone();
    let setter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        flag.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    let args = vec!["loop".to_owned()];
    let dir = tempfile::tempdir().unwrap();
    let task = WasmTask {
        module: PROBE,
        name: "probe.wasm",
        args: &args,
        env: &[],
        inputs: &[],
        task_idx: 0,
        n_tasks: 1,
        seed: [7; 32],
        cancel: Some(cancel),
    };
    // Budget and clock far beyond the test: only the flag stops it.
    let limits = WasmLimits { fuel: u64::MAX / 2, wall_ms: 600_000, ..limits() };
    let started = Instant::now();
    let err = executor.run(&task, &limits, dir.path()).unwrap_err();
    setter.join().unwrap();
    assert!(matches!(err, WasmError::Cancelled), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5), "stopped after {:?}", started.elapsed());
    // The executor serves the next task.
    assert_eq!(out_file(&probe(&executor, &["ok", "next"]).unwrap().output, "ok.txt"), b"next");
}

#[test]
fn a_module_that_keeps_writing_is_stopped_while_it_runs_not_after() {
    let executor = WasmExecutor::new().unwrap();
    // It never ends on its own: only the output cap, watched while it
    // runs, stops it long before the budget or the clock would.
    let limits = WasmLimits { fuel: u64::MAX / 2, wall_ms: 600_000, output_bytes: 4 << 20, ..limits() };
    let started = Instant::now();
    let err = run_with(&executor, PROBE, &["flood"], &[], &limits).unwrap_err();
    assert!(matches!(err, WasmError::OutputTooLarge { max_bytes } if max_bytes == 4 << 20), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10), "stopped after {:?}", started.elapsed());
}
