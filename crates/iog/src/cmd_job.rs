//! `iog job …`

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use iog_client::Client;
use iog_proto::api::JobStatus;
use iog_types::{JobId, JobState};

use crate::args::{Global, JobArgs, JobCommand};
use crate::display::{self, print_json};
use crate::watch::watch;

fn parse_id(text: &str) -> anyhow::Result<JobId> {
    text.parse().map_err(|err| anyhow::anyhow!("{err} (job ids look like j-0123456789abcdef)"))
}

pub async fn job(global: &Global, args: JobArgs) -> anyhow::Result<ExitCode> {
    let client = global.authed_client()?;
    match args.command {
        JobCommand::Submit { file, watch: follow } => {
            let spec = read_job_file(&file)?;
            let (spec, authorization) = crate::cmd_ledger::authorize_job(spec, &global.wallet_dir)?;
            let submitted = client.submit_authorized(spec, authorization).await.context("submit job")?;
            if global.json && !follow {
                print_json(&submitted)?;
            } else if !global.json {
                println!("{}", submitted.job_id);
            }
            if follow {
                return finish(global, watch(&client, submitted.job_id, !global.json).await?);
            }
        }
        JobCommand::Watch { job_id } => {
            let status = watch(&client, parse_id(&job_id)?, !global.json).await?;
            return finish(global, status);
        }
        JobCommand::Status { job_id } => {
            let status = client.job(parse_id(&job_id)?).await?;
            if global.json {
                print_json(&status)?;
            } else {
                print!("{}", display::job_summary(&status));
            }
        }
        JobCommand::Result { job_id, out, wait } => {
            let job_id = parse_id(&job_id)?;
            let status = if wait { watch(&client, job_id, !global.json).await? } else { client.job(job_id).await? };
            let written = download(&client, &status, &out).await?;
            if global.json {
                print_json(&serde_json::json!({ "job_id": job_id, "files": written }))?;
            } else {
                for path in written {
                    println!("{path}");
                }
            }
        }
        JobCommand::Bill { job_id } => {
            let bill = client.billing(parse_id(&job_id)?).await?;
            if global.json {
                print_json(&bill)?;
            } else {
                print!("{}", display::bill(&bill));
            }
        }
        JobCommand::Cancel { job_id } => {
            let status = client.cancel(parse_id(&job_id)?).await?;
            if global.json {
                print_json(&status)?;
            } else {
                println!("{} {}", status.job_id, status.state);
            }
        }
        JobCommand::List { limit } => {
            let jobs = client.jobs(limit).await?;
            if global.json {
                print_json(&jobs)?;
            } else {
                let mut table = display::table(&["job", "name", "workload", "state", "tasks"]);
                for job in jobs {
                    table.add_row(vec![
                        job.job_id.to_string(),
                        job.name,
                        job.workload,
                        job.state.to_string(),
                        format!("{}/{}", job.n_settled, job.n_tasks),
                    ]);
                }
                println!("{table}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads and validates a job file; scene files are inlined.
pub fn read_job_file(path: &Path) -> anyhow::Result<iog_workloads::JobSpec> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read job file {}", path.display()))?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    iog_workloads::parse_job_file(&text, base_dir).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
}

/// Prints a settled job's outcome; a job that did not finish is a failed command.
fn finish(global: &Global, status: JobStatus) -> anyhow::Result<ExitCode> {
    if global.json {
        print_json(&status)?;
    } else {
        print!("{}", display::job_summary(&status));
    }
    Ok(if status.state == JobState::Done { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// Writes a done job's artifacts into `out` and returns their paths.
pub async fn download(client: &Client, status: &JobStatus, out: &Path) -> anyhow::Result<Vec<String>> {
    match status.state {
        JobState::Done if !status.artifacts.is_empty() => {}
        JobState::Done | JobState::Running => bail!(
            "job {} is still {} ({}/{} tasks settled); wait with `iog job watch {}` or pass --wait",
            status.job_id,
            if status.state == JobState::Done { "assembling its results" } else { "running" },
            status.n_settled,
            status.n_tasks,
            status.job_id
        ),
        state => bail!(
            "job {} is {state} and has no results: {}",
            status.job_id,
            status.reason.as_deref().unwrap_or("no reason recorded")
        ),
    }
    std::fs::create_dir_all(out).with_context(|| format!("create output directory {}", out.display()))?;
    let mut written = Vec::new();
    for artifact in &status.artifacts {
        let bytes = client.get_blob(artifact.blob).await.with_context(|| format!("download {}", artifact.name))?;
        // Artifact names come from the coordinator; never let one escape `out`.
        let name = Path::new(&artifact.name).file_name().context("artifact has no file name")?;
        let path = out.join(name);
        std::fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))?;
        written.push(path.display().to_string());
    }
    Ok(written)
}
