//! Builds a done job's artifacts from its committed task outputs.

use anyhow::Context;
use iog_store::{ArtifactRecord, Store};
use iog_types::JobId;

/// Assembles and records a job's artifacts; errors are logged for the operator.
pub(crate) async fn assemble_and_log(store: Store, job_id: JobId) {
    match assemble(&store, job_id).await {
        Ok(Some(n)) => tracing::info!(job_id = %job_id, n_artifacts = n, "artifacts assembled"),
        Ok(None) => tracing::info!(job_id = %job_id, "sealed job done; its submitter opens and assembles the results"),
        Err(err) => {
            tracing::error!(job_id = %job_id, error = format!("{err:#}"), "assembling artifacts failed")
        }
    }
}

/// The number of artifacts built; `None` for a sealed job, whose outputs
/// the coordinator cannot read.
async fn assemble(store: &Store, job_id: JobId) -> anyhow::Result<Option<usize>> {
    let job = store.job(job_id).await?.context("load job")?;
    if job.sealed {
        return Ok(None);
    }
    let mut spec = iog_workloads::parse_job_json(&job.spec_json).context("decode stored job spec")?;
    resolve_files(store, &mut spec).await?;
    let workload = spec.workload().context("select workload")?;
    let all = store.tasks(job_id).await?;
    // Replicas of verification follow the job's own tasks; each task's
    // accepted output (which may be another replica's) is what counts, and
    // the run time of a run that returned it.
    let n_tasks = job.n_tasks as usize;
    let tasks = &all[..all.len().min(n_tasks)];
    let mut accepted_ms: std::collections::HashMap<usize, u64> = std::collections::HashMap::new();
    for run in &all {
        if let Some(commit) = run.commit.as_ref().filter(|commit| commit.verdict == Some(true)) {
            accepted_ms.entry(run.task_id.task_idx as usize % n_tasks.max(1)).or_insert(commit.duration_ms);
        }
    }
    let mut outputs = Vec::with_capacity(tasks.len());
    let mut durations_ms = Vec::with_capacity(tasks.len());
    for (task_idx, task) in tasks.iter().enumerate() {
        let output = task.verified_output.with_context(|| format!("task {} has no accepted result", task.task_id))?;
        let bytes = store
            .get_blob(output)
            .await?
            .with_context(|| format!("output blob {output} of task {} is missing", task.task_id))?;
        outputs.push(bytes);
        durations_ms.push(accepted_ms.get(&task_idx).copied().unwrap_or(0));
    }
    let built = tokio::task::spawn_blocking(move || iog_workloads::assemble(&workload, &outputs, &durations_ms))
        .await
        .context("join assembly")?
        .context("assemble outputs")?;
    let mut artifacts = Vec::with_capacity(built.len());
    for artifact in built {
        let size_bytes = artifact.bytes.len() as u64;
        let blob = store.put_blob(artifact.bytes).await?;
        artifacts.push(ArtifactRecord { name: artifact.name, media_type: artifact.media_type, blob, size_bytes });
    }
    store.put_artifacts(job_id, &artifacts).await?;
    Ok(Some(artifacts.len()))
}

/// Puts the uploaded files that a job's planning and assembly read (a
/// train job's data) in place of their names in `spec`; nothing for the
/// jobs whose files only their workers read.
pub(crate) async fn resolve_files(store: &Store, spec: &mut iog_workloads::JobSpec) -> anyhow::Result<()> {
    if !spec.reads_files_to_plan() {
        return Ok(());
    }
    let mut files = std::collections::HashMap::new();
    for blob in spec.planning_files() {
        let bytes = store.get_blob(blob).await?.with_context(|| format!("the job's file {blob} is missing"))?;
        files.insert(blob, bytes);
    }
    spec.resolve_files(&|blob| files.get(blob).cloned()).context("read the job's files")?;
    Ok(())
}
