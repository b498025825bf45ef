//! Runs a job file on this machine the way the network would: plan, run
//! every task, assemble. Writes the artifacts and prints how long it took.
//!
//! `cargo run --release -p iog-workloads --example run_job -- JOB.toml [OUT_DIR]`

use std::path::{Path, PathBuf};
use std::time::Instant;

use iog_workloads::{assemble, chain_length, next_input, parse_job_file, plan, run_task};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let job_path = PathBuf::from(args.next().ok_or("usage: run_job JOB.toml [OUT_DIR]")?);
    let out_dir = PathBuf::from(args.next().unwrap_or_else(|| ".".to_owned()));
    let text = std::fs::read_to_string(&job_path)?;
    let base_dir = job_path.parent().unwrap_or(Path::new("."));
    let workload = parse_job_file(&text, base_dir)?.workload()?;

    let started = Instant::now();
    let mut inputs = plan(&workload)?;
    // A chained workload plans its first task; each later one starts from
    // the output of the one before.
    let n_tasks = chain_length(&workload).map_or(inputs.len(), |windows| windows as usize);
    let mut outputs: Vec<Vec<u8>> = Vec::with_capacity(n_tasks);
    let mut durations_ms = Vec::with_capacity(n_tasks);
    let mut work_units = 0;
    for task_idx in 0..n_tasks {
        if task_idx == inputs.len() {
            let previous = task_idx - 1;
            inputs.push(next_input(&workload, task_idx as u64, &inputs[previous], &outputs[previous])?);
        }
        let task_started = Instant::now();
        let run = run_task(&inputs[task_idx])?;
        durations_ms.push(task_started.elapsed().as_millis() as u64);
        work_units += run.work_units;
        outputs.push(run.output);
    }
    let ran_s = started.elapsed().as_secs_f64();
    let artifacts = assemble(&workload, &outputs, &durations_ms)?;
    std::fs::create_dir_all(&out_dir)?;
    for artifact in &artifacts {
        std::fs::write(out_dir.join(&artifact.name), &artifact.bytes)?;
    }
    println!(
        "{} {} tasks ran in {ran_s:.2} s (each {:?} ms) ({work_units} work units, {:.0}/s); wrote {}",
        inputs.len(),
        workload.kind(),
        durations_ms,
        work_units as f64 / ran_s,
        artifacts
            .iter()
            .map(|artifact| out_dir.join(&artifact.name).display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
