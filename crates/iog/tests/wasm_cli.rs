//! `iog wasm run`: a module run on this machine in the worker's sandbox,
//! from the command line (built with `--features wasm`).
#![cfg(feature = "wasm")]

use std::path::PathBuf;
use std::process::{Command, Output};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/wasm")
}

fn iog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_iog")).args(args).output().expect("run iog")
}

#[test]
fn a_module_runs_from_the_command_line_and_its_errors_say_what_to_change() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let module = examples().join("montecarlo.wasm");
    let params = dir.path().join("params.json");
    std::fs::write(&params, br#"{"samples": 50000}"#).unwrap();
    // One task of the example, its files written to `out`.
    let run_task = |out: &std::path::Path| {
        iog(&[
            "wasm",
            "run",
            module.to_str().unwrap(),
            "--input",
            params.to_str().unwrap(),
            "--task-index",
            "1",
            "--tasks",
            "2",
            "--out",
            out.to_str().unwrap(),
            "--",
            "--seed",
            "3",
        ])
    };
    let run = run_task(&out);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{stderr}");
    let result = std::fs::read_to_string(out.join("result.json")).unwrap();
    assert!(result.starts_with(r#"{"task":1,"samples":50000,"inside":"#), "{result}");
    assert_eq!(String::from_utf8_lossy(&run.stdout).trim(), result.trim(), "stdout is shown too");
    assert!(stderr.contains("instructions; 1 file(s)"), "{stderr}");

    // The same task again gives the same bytes.
    let again = dir.path().join("again");
    let run = run_task(&again);
    assert!(run.status.success());
    assert_eq!(std::fs::read(again.join("result.json")).unwrap(), result.as_bytes());

    let probe = examples().join("sandbox-probe.wasm");
    let run = iog(&["wasm", "run", probe.to_str().unwrap(), "--memory-mib", "8", "--", "alloc", "64"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("past its cap of 8388608 bytes; give the job more memory"), "{stderr}");

    let run = iog(&[
        "wasm",
        "run",
        probe.to_str().unwrap(),
        "--timeout-ms",
        "200",
        "--fuel",
        "100000000000000",
        "--",
        "loop",
    ]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("wall-clock limit of 200 ms"), "{stderr}");

    let run = iog(&["wasm", "run", module.to_str().unwrap(), "--task-index", "2", "--tasks", "2"]);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success());
    assert!(stderr.contains("--task-index 2 is not below --tasks 2"), "{stderr}");
}
