//! `iog wasm`: the worker's WebAssembly sandbox, run on this machine.

#[cfg(feature = "wasm")]
use std::path::Path;
use std::process::ExitCode;

#[cfg(feature = "wasm")]
use anyhow::Context;

use crate::args::{WasmArgs, WasmCommand, WasmRunArgs};

pub async fn wasm(args: WasmArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        WasmCommand::Run(args) => run(args).await,
    }
}

#[cfg(not(feature = "wasm"))]
async fn run(_args: WasmRunArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!(
        "this build of iog has no WebAssembly executor; build it with the `wasm` feature: \
         cargo run --release --features wasm -- wasm run …"
    )
}

#[cfg(feature = "wasm")]
async fn run(args: WasmRunArgs) -> anyhow::Result<ExitCode> {
    let module = std::fs::read(&args.module).with_context(|| format!("read module {}", args.module.display()))?;
    let mut inputs = Vec::new();
    for path in &args.inputs {
        let name = path
            .file_name()
            .and_then(|name| name.to_str())
            .with_context(|| format!("input {} has no file name in UTF-8", path.display()))?
            .to_owned();
        if inputs.iter().any(|(known, _): &(String, Vec<u8>)| *known == name) {
            anyhow::bail!("two inputs are named {name:?}; the module sees them in one directory, /in");
        }
        let bytes = std::fs::read(path).with_context(|| format!("read input {}", path.display()))?;
        inputs.push((name, bytes));
    }
    let mut env = Vec::new();
    for pair in &args.env {
        let (key, value) = pair.split_once('=').with_context(|| format!("--env {pair:?} is not KEY=VALUE"))?;
        if key.is_empty() || key.starts_with("IOG_") {
            anyhow::bail!(
                "--env {pair:?}: the name must be non-empty and not start with IOG_ (those are set for the module)"
            );
        }
        env.push((key.to_owned(), value.to_owned()));
    }
    anyhow::ensure!(
        args.task_index < args.tasks,
        "--task-index {} is not below --tasks {}; tasks are numbered from 0",
        args.task_index,
        args.tasks
    );
    let limits = iog_exec::WasmLimits {
        fuel: args.fuel,
        memory_bytes: args.memory_mib << 20,
        wall_ms: args.timeout_ms,
        output_bytes: args.output_mib << 20,
    };
    let name = args.module.file_name().and_then(|n| n.to_str()).unwrap_or("module.wasm").to_owned();
    // The same seed a worker would use for this module and task.
    let seed = iog_workloads::wasm::task_seed(&iog_types::BlobId::of(&module), args.task_index);
    let work = tempfile::tempdir().context("make a work directory")?;
    let outcome = tokio::task::spawn_blocking(move || {
        let executor = iog_exec::WasmExecutor::new()?;
        let task = iog_exec::WasmTask {
            module: &module,
            name: &name,
            args: &args.args,
            env: &env,
            inputs: &inputs,
            task_idx: args.task_index,
            n_tasks: args.tasks,
            seed,
            cancel: None,
        };
        executor.run(&task, &limits, work.path())
    })
    .await
    .context("the run's thread failed")?;
    let run = match outcome {
        Ok(run) => run,
        Err(err) => {
            eprintln!("error: {err}");
            return Ok(ExitCode::FAILURE);
        }
    };
    write_out(&args.out, &run.output)?;
    let stdout = run.output.stdout();
    if !stdout.is_empty() {
        print!("{}", String::from_utf8_lossy(stdout));
    }
    eprintln!(
        "ran in {:.1} ms (compiled in {:.1} ms), {} instructions; {} file(s) in {}",
        run.elapsed.as_secs_f64() * 1e3,
        run.compile.as_secs_f64() * 1e3,
        run.fuel_used,
        run.output.out_files().count(),
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Writes the files the module left in /out under `dir` (its standard
/// output is printed, not written, so it cannot clash with a file).
#[cfg(feature = "wasm")]
fn write_out(dir: &Path, output: &iog_exec::Bundle) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
    for (relative, bytes) in output.out_files() {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("create {}", parent.display()))?;
        }
        std::fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))?;
    }
    Ok(())
}
