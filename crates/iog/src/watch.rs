//! Live progress of a job: one bar for the job, one per worker.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use iog_client::Client;
use iog_client::sealed::KeyServer;
use iog_proto::api::JobStatus;
use iog_types::{JobId, JobState};

/// How often progress is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// How often a sealed job's waiting key requests are answered.
const KEY_INTERVAL: Duration = Duration::from_millis(250);

/// Rounds of serving keys that may fail in a row before watching stops:
/// about five seconds of trying.
const KEY_FAILURES_MAX: u32 = 20;

/// Follows a job until it has settled (final, with artifacts when done).
/// With `show` false nothing is drawn (for `--json`).
pub async fn watch(client: &Client, job_id: JobId, show: bool) -> anyhow::Result<JobStatus> {
    watch_with(client, job_id, show, None).await
}

/// As [`watch`]; with `keys`, a sealed job's workers are also handed the
/// task keys they wait for, every [`KEY_INTERVAL`]. A round that fails is
/// logged and retried; [`KEY_FAILURES_MAX`] failures in a row end the watch.
pub async fn watch_with(
    client: &Client,
    job_id: JobId,
    show: bool,
    mut keys: Option<&mut KeyServer>,
) -> anyhow::Result<JobStatus> {
    let mut last_keys: Option<Instant> = None;
    let mut key_failures = 0u32;
    let multi =
        MultiProgress::with_draw_target(if show { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() });
    let job_style =
        ProgressStyle::with_template("{prefix:>12} [{bar:40.green/blue}] {pos}/{len} tasks  {elapsed_precise}  {msg}")
            .expect("valid template")
            .progress_chars("█▉▊▋▌▍▎▏ ");
    let worker_style =
        ProgressStyle::with_template("{prefix:>12} {spinner} {pos:>4} done  {msg}").expect("valid template");
    let mut job_bar: Option<ProgressBar> = None;
    let mut worker_bars: HashMap<iog_types::WorkerId, ProgressBar> = HashMap::new();
    loop {
        if let Some(server) = keys.as_deref_mut()
            && last_keys.is_none_or(|at| at.elapsed() >= KEY_INTERVAL)
        {
            last_keys = Some(Instant::now());
            match server.serve(client).await {
                Ok(_) => key_failures = 0,
                Err(err) => {
                    key_failures += 1;
                    if key_failures >= KEY_FAILURES_MAX {
                        return Err(anyhow::Error::new(err)
                            .context(format!("hand out the task keys of sealed job {job_id} ({key_failures} tries)")));
                    }
                    tracing::warn!(job_id = %job_id, "handing out task keys failed (will retry): {err}");
                }
            }
        }
        let status = client.job(job_id).await.with_context(|| format!("read status of job {job_id}"))?;
        let bar = job_bar.get_or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(u64::from(status.n_tasks)));
            bar.set_style(job_style.clone());
            bar.set_prefix(status.name.chars().take(12).collect::<String>());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        bar.set_position(u64::from(status.n_settled.max(status.tasks.committed.min(status.n_tasks))));
        let mut message = format!("{} running, {} queued", status.tasks.leased, status.tasks.queued);
        if let Some(server) = keys.as_deref() {
            let served = server.total();
            message.push_str(&format!(", {} keys handed out", served.delivered));
            if served.refused > 0 {
                message.push_str(&format!(" ({} requests refused)", served.refused));
            }
        }
        bar.set_message(message);
        for share in &status.workers {
            let worker_bar = worker_bars.entry(share.worker_id.clone()).or_insert_with(|| {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(worker_style.clone());
                bar.set_prefix(share.worker_id.short().to_owned());
                bar.enable_steady_tick(Duration::from_millis(120));
                bar
            });
            worker_bar.set_position(u64::from(share.n_committed));
            let activity =
                if share.n_leased > 0 { format!("working on {}", share.n_leased) } else { "idle".to_owned() };
            worker_bar.set_message(activity);
        }
        if status.is_settled() {
            let outcome = match status.state {
                JobState::Done => "done".to_owned(),
                other => format!("{other}: {}", status.reason.clone().unwrap_or_default()),
            };
            bar.finish_with_message(outcome);
            for worker_bar in worker_bars.values() {
                worker_bar.finish_with_message("finished");
            }
            return Ok(status);
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
