//! A real network: one coordinator process and three worker processes on
//! loopback, driven through the CLI and the REST API.

mod common;

use std::time::Duration;

use common::{Cluster, decode_png, reference_render, submit, write_render_job};
use iog_types::{JobState, TaskState};

const JOB_TIMEOUT: Duration = Duration::from_secs(120);

/// Downloads the job's image through the CLI and checks it pixel for pixel
/// against the same scene rendered here in one piece.
fn assert_image_matches(cluster: &Cluster, job_id: iog_types::JobId, job_file: &std::path::Path) {
    let out_dir = cluster.dir.path().join(format!("out-{job_id}"));
    let out = cluster.cli(&["job", "result", &job_id.to_string(), "--out", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "result failed: {}", String::from_utf8_lossy(&out.stderr));
    let png = std::fs::read(out_dir.join("image.png")).unwrap();
    let (width, height, rgb) = decode_png(&png);
    let (ref_width, ref_height, ref_rgb) = reference_render(job_file);
    assert_eq!((width, height), (ref_width, ref_height));
    assert!(rgb == ref_rgb, "the assembled image differs from the single-process render");
}

/// Every task committed, each by exactly one commit row in the store.
async fn assert_committed_once(cluster: &Cluster, job_id: iog_types::JobId) -> Vec<iog_proto::api::TaskStatus> {
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    assert!(tasks.iter().all(|t| t.state == TaskState::Committed && t.committed_by.is_some()));
    let db = cluster.coordinator_dir().join("coordinator.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display())).await.unwrap();
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT task_idx, COUNT(*) FROM commits WHERE job_id = ? GROUP BY task_idx")
            .bind(job_id.0 as i64)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), tasks.len(), "every task has a commit");
    assert!(rows.iter().all(|(_, n)| *n == 1), "no task has two commits");
    pool.close().await;
    tasks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_render_the_same_image_as_one_process() {
    let cluster = Cluster::start(3).await;
    let job_file = write_render_job(cluster.dir.path(), 96, 72, 16, 8);
    let job_id = submit(&cluster, &job_file);
    let status = cluster.wait_job(job_id, JOB_TIMEOUT, |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert_eq!(status.n_tasks, 6 * 5);
    assert_image_matches(&cluster, job_id, &job_file);
    assert_committed_once(&cluster, job_id).await;
    let workers_used = status.workers.iter().filter(|w| w.n_committed > 0).count();
    assert!(workers_used >= 2, "work spread over workers: {:?}", status.workers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_loses_nothing() {
    let mut cluster = Cluster::start(3).await;
    let job_file = write_render_job(cluster.dir.path(), 160, 128, 16, 96);
    let job_id = submit(&cluster, &job_file);
    let victim = cluster.workers[0].0.clone();
    // Kill the first worker while it holds a lease and the job is under way.
    cluster
        .wait_job(job_id, JOB_TIMEOUT, |s| {
            s.tasks.committed >= 3 && s.workers.iter().any(|w| w.worker_id == victim && w.n_leased > 0)
        })
        .await;
    cluster.workers[0].1.kill9();
    let status = cluster.wait_job(job_id, JOB_TIMEOUT, |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    let tasks = assert_committed_once(&cluster, job_id).await;
    assert!(tasks.iter().any(|t| t.attempts >= 2), "the killed worker's task was leased again: {tasks:?}");
    assert_image_matches(&cluster, job_id, &job_file);
    let workers = cluster.client.workers().await.unwrap();
    assert!(!workers.iter().find(|w| w.worker_id == victim).unwrap().online);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_mid_job_resumes_from_its_store() {
    let mut cluster = Cluster::start(3).await;
    let job_file = write_render_job(cluster.dir.path(), 160, 128, 16, 96);
    let job_id = submit(&cluster, &job_file);
    let before = cluster.wait_job(job_id, JOB_TIMEOUT, |s| s.tasks.committed >= 5).await;
    assert_eq!(before.state, JobState::Running, "the job must still be running when the coordinator dies");
    cluster.coordinator.as_mut().unwrap().kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.start_coordinator().await;
    // Workers find the new coordinator by themselves.
    cluster.wait_for_online(3).await;
    let status = cluster.wait_job(job_id, JOB_TIMEOUT, |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    assert!(status.tasks.committed >= before.tasks.committed);
    assert_committed_once(&cluster, job_id).await;
    assert_image_matches(&cluster, job_id, &job_file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_task_outputs_travel_as_blob_files() {
    let cluster = Cluster::start(1).await;
    // 160 x 160 RGB tiles are 76 800 bytes, above the 64 KiB inline limit.
    let job_file = write_render_job(cluster.dir.path(), 320, 160, 160, 2);
    let job_id = submit(&cluster, &job_file);
    let status = cluster.wait_job(job_id, JOB_TIMEOUT, |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    let tasks = assert_committed_once(&cluster, job_id).await;
    let blobs_dir = cluster.coordinator_dir().join("blobs");
    for task in &tasks {
        let hex = task.output.unwrap().to_hex();
        assert!(blobs_dir.join(&hex[..2]).join(&hex[2..]).is_file(), "tile output {hex} is a blob file");
    }
    assert_image_matches(&cluster, job_id, &job_file);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_submission_survives_an_immediate_kill() {
    let mut cluster = Cluster::start(0).await;
    let job_file = common::examples_dir().join("hash-blake3.toml");
    let job_id = submit(&cluster, &job_file);
    cluster.coordinator.as_mut().unwrap().kill9();
    cluster.start_coordinator().await;
    let status = cluster.client.job(job_id).await.expect("the acknowledged job is still there");
    assert_eq!(status.state, JobState::Running);
    assert_eq!(status.tasks.queued, status.n_tasks);
    // And it runs to the end once a worker joins.
    cluster.start_worker(0);
    let status = cluster.wait_job(job_id, JOB_TIMEOUT, |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
}
