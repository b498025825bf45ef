//! `iog-bench seal`: what sealing a job costs, on one core.
//!
//! - sealing and opening throughput of task data (XChaCha20-Poly1305 with
//!   a synthetic nonce, so each byte is hashed once and encrypted once) at
//!   several sizes;
//! - wrapping and unwrapping one task key (an X25519 exchange each), which
//!   every placed task of a sealed job costs once on each side;
//! - preparing a sealed render job on the submitter's machine (plan, seal
//!   every input, manifest) against planning the same job in the clear.

use std::time::Instant;

use iog_seal::{JobSecret, Purpose, SealSecret};

/// One size's figures.
#[derive(Debug, serde::Serialize)]
pub struct SizeFigures {
    pub bytes: usize,
    pub seal_mib_per_s: f64,
    pub open_mib_per_s: f64,
}

/// Everything measured.
#[derive(Debug, serde::Serialize)]
pub struct Figures {
    pub sizes: Vec<SizeFigures>,
    pub wraps_per_s: f64,
    pub unwraps_per_s: f64,
    pub render_tasks: usize,
    pub render_input_bytes: usize,
    pub plan_ms: f64,
    pub prepare_sealed_ms: f64,
}

/// Runs each measurement for about `seconds` seconds.
pub fn run(seconds: f64) -> Figures {
    let key = JobSecret::from_bytes([7; 32]).task_key(0);
    let mut sizes = Vec::new();
    for bytes in [1 << 10, 64 << 10, 1 << 20, 16 << 20] {
        let plaintext = vec![0x5a_u8; bytes];
        let (n_seal, seal_s) = repeat(seconds, || {
            std::hint::black_box(key.seal(Purpose::Output, &plaintext));
        });
        let sealed = key.seal(Purpose::Output, &plaintext);
        let (n_open, open_s) = repeat(seconds, || {
            std::hint::black_box(key.open(Purpose::Output, &sealed).expect("opens"));
        });
        let mib = bytes as f64 / f64::from(1 << 20);
        sizes.push(SizeFigures {
            bytes,
            seal_mib_per_s: mib * n_seal as f64 / seal_s,
            open_mib_per_s: mib * n_open as f64 / open_s,
        });
    }
    let worker = SealSecret::derive(&[3; 32]);
    let public = worker.public();
    let context = iog_seal::task_context(1, 2, "worker");
    let (n_wrap, wrap_s) = repeat(seconds, || {
        std::hint::black_box(iog_seal::wrap(&public, &context, &key).expect("wraps"));
    });
    let wrapped = iog_seal::wrap(&public, &context, &key).expect("wraps");
    let (n_unwrap, unwrap_s) = repeat(seconds, || {
        std::hint::black_box(iog_seal::unwrap(&worker, &context, &wrapped).expect("unwraps"));
    });

    let spec = iog_workloads::demo_job();
    let mut sealed_spec = spec.clone();
    sealed_spec.job.sealed = true;
    let workload = spec.workload().expect("the demo job has a workload");
    let started = Instant::now();
    let plain = iog_workloads::plan(&workload).expect("the demo job plans");
    let plan_ms = started.elapsed().as_secs_f64() * 1e3;
    let started = Instant::now();
    let prepared = iog_client::sealed::prepare(&sealed_spec).expect("the demo job seals");
    let prepare_sealed_ms = started.elapsed().as_secs_f64() * 1e3;
    Figures {
        sizes,
        wraps_per_s: n_wrap as f64 / wrap_s,
        unwraps_per_s: n_unwrap as f64 / unwrap_s,
        render_tasks: prepared.inputs.len(),
        render_input_bytes: plain.iter().map(Vec::len).sum(),
        plan_ms,
        prepare_sealed_ms,
    }
}

/// Calls `f` until `seconds` have passed; returns the calls and the seconds.
fn repeat(seconds: f64, mut f: impl FnMut()) -> (u64, f64) {
    let started = Instant::now();
    let mut n = 0;
    while n == 0 || started.elapsed().as_secs_f64() < seconds {
        f();
        n += 1;
    }
    (n, started.elapsed().as_secs_f64())
}

/// One job run in the clear and sealed on the same network.
#[derive(Debug, serde::Serialize)]
pub struct JobFigures {
    pub job: String,
    pub tasks: u32,
    /// Submit until done (a plain job: until its artifacts are assembled).
    pub plain_ms: f64,
    /// Plan, seal, upload and submit until the results are opened and
    /// assembled on the submitter's side, with keys served every `key_poll_ms`.
    pub sealed_ms: f64,
    pub key_poll_ms: u64,
}

/// Runs the demo render job and a noop job of `noop_tasks` tasks on a
/// coordinator and `workers` in-process workers, plain and sealed.
pub async fn end_to_end(
    client: &iog_client::Client,
    wallet_dir: &std::path::Path,
    noop_tasks: u32,
    key_polls_ms: &[u64],
) -> anyhow::Result<Vec<JobFigures>> {
    let noop = iog_workloads::parse_job_json(
        serde_json::json!({ "job": { "name": "noop", "workload": "noop" }, "noop": { "n_tasks": noop_tasks } })
            .to_string()
            .as_bytes(),
    )?;
    let mut figures = Vec::new();
    for (name, spec) in [("demo render", iog_workloads::demo_job()), ("noop", noop)] {
        let started = Instant::now();
        let submitted = client.submit(serde_json::to_value(&spec)?).await?;
        loop {
            let status = client.job(submitted.job_id).await?;
            anyhow::ensure!(!status.state.is_final() || status.state == iog_types::JobState::Done, "{status:?}");
            if status.is_settled() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let plain_ms = started.elapsed().as_secs_f64() * 1e3;
        for &key_poll_ms in key_polls_ms {
            let mut sealed_spec = spec.clone();
            sealed_spec.job.sealed = true;
            let started = Instant::now();
            let (submitted, record) = iog_client::sealed::submit(client, &sealed_spec, wallet_dir).await?;
            let mut keys = iog_client::sealed::KeyServer::new(record.clone())?;
            loop {
                keys.serve(client).await?;
                let status = client.job(submitted.job_id).await?;
                anyhow::ensure!(!status.state.is_final() || status.state == iog_types::JobState::Done, "{status:?}");
                if status.is_settled() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(key_poll_ms)).await;
            }
            let artifacts = iog_client::sealed::open_results(client, &record).await?;
            anyhow::ensure!(!artifacts.is_empty(), "a sealed job opened to no artifacts");
            figures.push(JobFigures {
                job: name.to_owned(),
                tasks: submitted.n_tasks,
                plain_ms,
                sealed_ms: started.elapsed().as_secs_f64() * 1e3,
                key_poll_ms,
            });
        }
    }
    Ok(figures)
}
