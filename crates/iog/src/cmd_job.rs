//! `iog job …`

use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, bail};
use iog_client::Client;
use iog_client::sealed::{self, KeyServer, SealedRecord};
use iog_proto::api::JobStatus;
use iog_types::{JobId, JobState};

use crate::args::{Global, JobArgs, JobCommand};
use crate::display::{self, print_json};
use crate::watch::{watch, watch_with};

fn parse_id(text: &str) -> anyhow::Result<JobId> {
    text.parse().map_err(|err| anyhow::anyhow!("{err} (job ids look like j-0123456789abcdef)"))
}

pub async fn job(global: &Global, args: JobArgs) -> anyhow::Result<ExitCode> {
    let client = global.authed_client()?;
    match args.command {
        JobCommand::Submit { file, watch: follow } => {
            let (spec, files) = read_job_file(&file)?;
            if spec.job.sealed {
                return submit_sealed(global, &client, spec, follow).await;
            }
            upload_job_files(&client, files, !global.json).await?;
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
            let job_id = parse_id(&job_id)?;
            let mut keys = key_server(global, &client, job_id, true, false).await?;
            let status = watch_with(&client, job_id, !global.json, keys.as_mut()).await?;
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
        JobCommand::Tasks { job_id } => {
            let job_id = parse_id(&job_id)?;
            let tasks = client.tasks(job_id).await.with_context(|| format!("read the tasks of job {job_id}"))?;
            if global.json {
                print_json(&tasks)?;
            } else {
                print!("{}", display::tasks(&tasks));
            }
        }
        JobCommand::Result { job_id, out, wait } => {
            let job_id = parse_id(&job_id)?;
            let mut keys = key_server(global, &client, job_id, wait, true).await?;
            let status = if wait {
                watch_with(&client, job_id, !global.json, keys.as_mut()).await?
            } else {
                client.job(job_id).await.with_context(|| format!("read status of job {job_id}"))?
            };
            let written = match &keys {
                Some(keys) => open_sealed(&client, &status, keys.record(), &out).await?,
                None => download(&client, &status, &out).await?,
            };
            if global.json {
                print_json(&serde_json::json!({ "job_id": job_id, "files": written }))?;
            } else {
                for path in &written {
                    println!("{path}");
                }
                if let Some(summary) = written.iter().find_map(|path| result_summary(Path::new(path))) {
                    println!("{summary}");
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

/// Reads and validates a job file; scene files are inlined, and the files a
/// wasm, process or blender job names are read, to be uploaded.
pub fn read_job_file(path: &Path) -> anyhow::Result<(iog_workloads::JobSpec, Vec<iog_workloads::JobFile>)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("read job file {}", path.display()))?;
    let base_dir = path.parent().unwrap_or(Path::new("."));
    iog_workloads::load_job_file(&text, base_dir).map_err(|err| anyhow::anyhow!("{}: {err}", path.display()))
}

/// Uploads the files a job names (a module, a script, data, a scene) before the
/// job itself, which names them by content address. An upload is
/// idempotent, so a submission retried after a failure sends them again
/// harmlessly.
async fn upload_job_files(client: &Client, files: Vec<iog_workloads::JobFile>, show: bool) -> anyhow::Result<()> {
    let total: u64 = files.iter().map(|file| file.bytes.len() as u64).sum();
    let bar = (show && total > 8 << 20).then(|| crate::display::bytes_bar(total, "uploading job files"));
    for file in files {
        let size = file.bytes.len() as u64;
        client.put_blob(file.bytes).await.with_context(|| format!("upload {} ({size} bytes)", file.path))?;
        if let Some(bar) = &bar {
            bar.inc(size);
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    Ok(())
}

/// Seals a job on this machine, submits it, and (with `follow`) watches it
/// while handing its workers their task keys.
async fn submit_sealed(
    global: &Global,
    client: &Client,
    spec: iog_workloads::JobSpec,
    follow: bool,
) -> anyhow::Result<ExitCode> {
    let prepared = sealed::prepare(&spec).context("seal the job's task inputs")?;
    let n_tasks = prepared.record.n_tasks();
    // The coordinator receives and checks the wire spec, so that is what
    // the payer signs.
    let (wire, authorization) = crate::cmd_ledger::authorize_job(prepared.wire.clone(), &global.wallet_dir)?;
    let (submitted, record) = sealed::submit_prepared(client, prepared, &global.wallet_dir, wire, authorization)
        .await
        .context("submit sealed job")?;
    let job_id = submitted.job_id;
    let record_path = record.path(&global.wallet_dir);
    if global.json && !follow {
        print_json(&serde_json::json!({
            "job_id": job_id,
            "n_tasks": submitted.n_tasks,
            "sealed": true,
            "record": record_path,
        }))?;
    } else if !global.json {
        println!("{job_id}");
        eprintln!(
            "sealed {n_tasks} task inputs on this machine; the job's key is kept in {}: back it up, without it \
             the results cannot be read",
            record_path.display()
        );
    }
    if !follow {
        eprintln!(
            "note: the tasks of a sealed job wait for their keys, which only this machine can hand out: run \
             `iog job watch {job_id}` (or `iog job result {job_id} --out DIR --wait`) here, with this --wallet-dir, \
             until the job ends"
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut keys = KeyServer::new(record).context("serve the sealed job's task keys")?;
    finish(global, watch_with(client, job_id, !global.json, Some(&mut keys)).await?)
}

/// For a sealed job, a server of its task keys from the record kept in the
/// wallet dir, when its key is needed: to `serve` keys while it runs, or to
/// `open` its results once it is done. `None` otherwise, and for a plain job.
async fn key_server(
    global: &Global,
    client: &Client,
    job_id: JobId,
    serve: bool,
    open: bool,
) -> anyhow::Result<Option<KeyServer>> {
    let status = client.job(job_id).await.with_context(|| format!("read status of job {job_id}"))?;
    let needed = (serve && status.state == JobState::Running) || (open && status.state == JobState::Done);
    if !status.sealed || !needed {
        return Ok(None);
    }
    let record = SealedRecord::load(&global.wallet_dir, job_id)
        .with_context(|| format!("load the key of sealed job {job_id}"))?;
    Ok(Some(KeyServer::new(record).with_context(|| format!("serve the task keys of job {job_id}"))?))
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

/// Fails unless the job is done with its results ready: assembled
/// artifacts, or for a sealed job the accepted results to open here.
fn check_done(status: &JobStatus) -> anyhow::Result<()> {
    match status.state {
        JobState::Done if status.sealed || !status.artifacts.is_empty() => Ok(()),
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
}

/// Writes a done job's artifacts into `out` and returns their paths.
pub async fn download(client: &Client, status: &JobStatus, out: &Path) -> anyhow::Result<Vec<String>> {
    check_done(status)?;
    if status.sealed {
        bail!(
            "job {} is sealed: its results are opened on the machine it was submitted from, with `iog job result {} \
             --out DIR` and the same --wallet-dir",
            status.job_id,
            status.job_id
        );
    }
    std::fs::create_dir_all(out).with_context(|| format!("create output directory {}", out.display()))?;
    let mut written = Vec::new();
    for artifact in &status.artifacts {
        let bytes = client.get_blob(artifact.blob).await.with_context(|| format!("download {}", artifact.name))?;
        written.push(write_artifact(out, &artifact.name, &bytes)?);
    }
    Ok(written)
}

/// Downloads a done sealed job's results, opens them with the job's key and
/// assembles its artifacts here, into `out`; returns their paths.
async fn open_sealed(
    client: &Client,
    status: &JobStatus,
    record: &SealedRecord,
    out: &Path,
) -> anyhow::Result<Vec<String>> {
    check_done(status)?;
    let artifacts = sealed::open_results(client, record)
        .await
        .with_context(|| format!("open the results of sealed job {}", status.job_id))?;
    std::fs::create_dir_all(out).with_context(|| format!("create output directory {}", out.display()))?;
    artifacts.iter().map(|artifact| write_artifact(out, &artifact.name, &artifact.bytes)).collect()
}

/// Writes one artifact into `out` under the file name part of `name`.
fn write_artifact(out: &Path, name: &str, bytes: &[u8]) -> anyhow::Result<String> {
    // Artifact names come from the coordinator or a spec; never let one escape `out`.
    let file_name = Path::new(name).file_name().context("artifact has no file name")?;
    let path = out.join(file_name);
    std::fs::write(&path, bytes).with_context(|| format!("write {}", path.display()))?;
    Ok(path.display().to_string())
}

/// A line on a train or infer job's outcome, from its `result.json`: for
/// training, the held-out loss before and after, and the bytes its workers
/// sent against `f32`; for inference, the rows and their score.
fn result_summary(path: &Path) -> Option<String> {
    if path.file_name()? != "result.json" {
        return None;
    }
    let result: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
    if result["workload"] == "infer" {
        let (rows, tasks) = (result["rows"].as_u64()?, result["tasks"].as_u64()?);
        let what = if result["generate"].is_u64() { "prompts continued" } else { "rows predicted" };
        let score = match (result["accuracy"].as_f64(), result["mse"].as_f64()) {
            (Some(accuracy), _) => format!("; accuracy {:.2} %", accuracy * 100.0),
            (None, Some(mse)) => format!("; mean squared error {mse:.6}"),
            (None, None) => String::new(),
        };
        return Some(format!("{rows} {what} in {tasks} shards{score}"));
    }
    if result["workload"] != "train" {
        return None;
    }
    let (rounds, workers) = (result["rounds"].as_u64()?, result["workers"].as_u64()?);
    let loss = match (result["eval_loss_initial"].as_f64(), result["eval_loss_final"].as_f64()) {
        (Some(first), Some(last)) => format!("held-out loss {first:.4} → {last:.4}"),
        _ => match (result["train_loss_first_step"].as_f64(), result["train_loss_last_step"].as_f64()) {
            (Some(first), Some(last)) => format!("training loss {first:.4} → {last:.4}"),
            _ => return None,
        },
    };
    let sent = result["pseudo_gradient_bytes"].as_f64()?;
    let as_f32 = result["pseudo_gradient_bytes_as_f32"].as_f64()?;
    Some(format!(
        "{loss} over {rounds} rounds × {workers} workers; pseudo-gradients took {sent:.0} bytes, {:.1}× fewer than f32",
        as_f32 / sent.max(1.0)
    ))
}
