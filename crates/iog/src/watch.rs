//! Live progress of a job: one bar for the job, one per worker.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use iog_client::Client;
use iog_proto::api::JobStatus;
use iog_types::{JobId, JobState};

/// How often progress is polled.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Follows a job until it has settled (final, with artifacts when done).
/// With `show` false nothing is drawn (for `--json`).
pub async fn watch(client: &Client, job_id: JobId, show: bool) -> anyhow::Result<JobStatus> {
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
        let status = client.job(job_id).await.with_context(|| format!("read status of job {job_id}"))?;
        let bar = job_bar.get_or_insert_with(|| {
            let bar = multi.add(ProgressBar::new(u64::from(status.n_tasks)));
            bar.set_style(job_style.clone());
            bar.set_prefix(status.name.chars().take(12).collect::<String>());
            bar.enable_steady_tick(Duration::from_millis(100));
            bar
        });
        bar.set_position(u64::from(status.n_settled.max(status.tasks.committed.min(status.n_tasks))));
        bar.set_message(format!("{} running, {} queued", status.tasks.leased, status.tasks.queued));
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
