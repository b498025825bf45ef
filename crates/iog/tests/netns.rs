//! Network faults between real processes. A worker runs in its own network
//! namespace, joined to the coordinator's by a veth pair; `tc netem` adds
//! latency and loss where the kernel has it (else an nftables rule drops
//! packets at random), and taking the link down cuts the worker off entirely. Needs root and `ip netns`; without them the test
//! says it was skipped and why. Traffic stays on the test's own veth pair
//! and loopback.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{IOG, Proc, decode_png, reference_render, write_render_job};
use iog_client::Client;
use iog_types::{JobState, WorkerId};

/// Runs a command, returning its error output when it fails.
fn sh(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program).args(args).stdin(Stdio::null()).output().map_err(|e| e.to_string())?;
    if out.status.success() { Ok(()) } else { Err(String::from_utf8_lossy(&out.stderr).trim().to_owned()) }
}

/// Why this machine cannot run the test, if it cannot.
fn unsupported() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().ok()?;
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return Some("not running as root, which network namespaces need".into());
    }
    let probe = format!("iogprobe{}", std::process::id());
    if let Err(err) = sh("ip", &["netns", "add", &probe]) {
        return Some(format!("`ip netns add` failed: {err}"));
    }
    let _ = sh("ip", &["netns", "del", &probe]);
    None
}

/// A namespace and the veth pair into it; removed on drop.
struct Netns {
    name: String,
    host_dev: String,
    host_ip: String,
}

impl Netns {
    fn create(tag: u32) -> Netns {
        let pid = std::process::id();
        let name = format!("iog{pid}n{tag}");
        let host_dev = format!("iogh{}{tag}", pid % 10_000);
        let ns_dev = format!("iogn{}{tag}", pid % 10_000);
        let subnet = format!("10.{}.{}", 200 + tag, pid % 250);
        let host_ip = format!("{subnet}.1");
        let netns = Netns { name: name.clone(), host_dev: host_dev.clone(), host_ip: host_ip.clone() };
        let steps: [(&str, Vec<String>); 8] = [
            ("ip", vec!["netns".into(), "add".into(), name.clone()]),
            (
                "ip",
                vec![
                    "link".into(),
                    "add".into(),
                    host_dev.clone(),
                    "type".into(),
                    "veth".into(),
                    "peer".into(),
                    "name".into(),
                    ns_dev.clone(),
                ],
            ),
            ("ip", vec!["link".into(), "set".into(), ns_dev.clone(), "netns".into(), name.clone()]),
            ("ip", vec!["addr".into(), "add".into(), format!("{host_ip}/24"), "dev".into(), host_dev.clone()]),
            ("ip", vec!["link".into(), "set".into(), host_dev.clone(), "up".into()]),
            (
                "ip",
                vec![
                    "netns".into(),
                    "exec".into(),
                    name.clone(),
                    "ip".into(),
                    "addr".into(),
                    "add".into(),
                    format!("{subnet}.2/24"),
                    "dev".into(),
                    ns_dev.clone(),
                ],
            ),
            (
                "ip",
                vec![
                    "netns".into(),
                    "exec".into(),
                    name.clone(),
                    "ip".into(),
                    "link".into(),
                    "set".into(),
                    ns_dev.clone(),
                    "up".into(),
                ],
            ),
            (
                "ip",
                vec![
                    "netns".into(),
                    "exec".into(),
                    name.clone(),
                    "ip".into(),
                    "link".into(),
                    "set".into(),
                    "lo".into(),
                    "up".into(),
                ],
            ),
        ];
        for (program, args) in steps {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            sh(program, &args).unwrap_or_else(|err| panic!("{program} {}: {err}", args.join(" ")));
        }
        netns
    }

    /// Degrades the link: latency and loss with netem where the kernel has
    /// it, else loss alone with an nftables rule inside the namespace.
    /// Returns what was injected and what could not be.
    fn degrade(&self) -> String {
        let netem =
            sh("tc", &["qdisc", "add", "dev", &self.host_dev, "root", "netem", "delay", "40ms", "10ms", "loss", "3%"]);
        let netem_err = match netem {
            Ok(()) => return "netem: 40 ms +- 10 ms latency and 3% loss on the worker's link".to_owned(),
            Err(err) => err,
        };
        let ns = self.name.as_str();
        let nft = |args: &[&str]| {
            let mut full = vec!["netns", "exec", ns, "nft"];
            full.extend_from_slice(args);
            sh("ip", &full)
        };
        let loss = nft(&["add", "table", "inet", "iogloss"])
            .and_then(|()| nft(&["add", "chain", "inet", "iogloss", "in", "{ type filter hook input priority 0 ; }"]))
            .and_then(|()| nft(&["add", "chain", "inet", "iogloss", "out", "{ type filter hook output priority 0 ; }"]))
            .and_then(|()| nft(&["add", "rule", "inet", "iogloss", "in", "meta", "iifname", "!=", "lo", "counter"]))
            .and_then(|()| nft(&["add", "rule", "inet", "iogloss", "out", "meta", "oifname", "!=", "lo", "counter"]))
            .and_then(|()| {
                nft(&[
                    "add", "rule", "inet", "iogloss", "in", "meta", "iifname", "!=", "lo", "numgen", "random", "mod",
                    "100", "<", "10", "counter", "drop",
                ])
            })
            .and_then(|()| {
                nft(&[
                    "add", "rule", "inet", "iogloss", "out", "meta", "oifname", "!=", "lo", "numgen", "random", "mod",
                    "100", "<", "10", "counter", "drop",
                ])
            });
        match loss {
            Ok(()) => format!(
                "netem unavailable ({netem_err}); no latency injected; nftables drops 10% of packets each way on the worker's link"
            ),
            Err(err) => format!(
                "netem unavailable ({netem_err}) and nftables unavailable ({err}); only the partition is injected"
            ),
        }
    }

    /// Packets that crossed the worker's link and packets the nftables loss
    /// rules dropped, when those rules are in place.
    fn nft_counts(&self) -> Option<(u64, u64)> {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.name, "nft", "list", "table", "inet", "iogloss"])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (mut seen, mut dropped) = (0, 0);
        for line in text.lines().filter(|line| line.contains("counter packets ")) {
            let n: u64 = line.split("packets ").nth(1)?.split_whitespace().next()?.parse().ok()?;
            if line.contains("drop") { dropped += n } else { seen += n }
        }
        Some((seen, dropped))
    }

    fn link(&self, up: bool) {
        sh("ip", &["link", "set", &self.host_dev, if up { "up" } else { "down" }]).unwrap();
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = sh("ip", &["link", "del", &self.host_dev]);
        let _ = sh("ip", &["netns", "del", &self.name]);
    }
}

fn spawn(args: &[&str], dir: &std::path::Path, name: &str, netns: Option<&str>) -> Proc {
    let log = dir.join(format!("{name}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let mut command = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, IOG]);
            c
        }
        None => Command::new(IOG),
    };
    command.args(args).env("RUST_LOG", "info").stdout(file.try_clone().unwrap()).stderr(file);
    Proc { child: command.spawn().unwrap(), log }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_workers_late_results_are_fenced_off() {
    if let Some(reason) = unsupported() {
        println!("skipped: {reason}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let netns = Netns::create(0);
    println!("{}", netns.degrade());
    let port = common::free_port();
    let listen = format!("{}:{port}", netns.host_ip);
    let url = format!("https://{listen}");
    let data = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let coordinator_dir = data("coordinator");
    let coordinator_args = [
        "coordinator",
        "--data-dir",
        &coordinator_dir,
        "--listen",
        &listen,
        "--heartbeat-interval-ms",
        "100",
        "--challenge-walk-steps",
        "65536",
    ];
    let _coordinator = spawn(&coordinator_args, dir.path(), "coordinator", None);
    let deadline = Instant::now() + Duration::from_secs(30);
    let pin_file = dir.path().join("coordinator").join(iog_coordinator::PIN_FILE_NAME);
    let pin: iog_client::Fingerprint = loop {
        if let Some(pin) = std::fs::read_to_string(&pin_file).ok().and_then(|text| text.parse().ok()) {
            break pin;
        }
        assert!(Instant::now() < deadline, "the coordinator wrote no pin");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let pin_text = pin.to_string();
    let client = Client::connect(&url, Some(pin)).unwrap().with_identity(iog_host::Identity::generate());
    while client.health().await.is_err() {
        assert!(Instant::now() < deadline, "coordinator did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (local_dir, remote_dir) = (data("worker-local"), data("worker-remote"));
    let memory = ["--memory-gib", common::WORKER_MEMORY_GIB];
    let _local = spawn(
        &[&["worker", "--coordinator", &url, "--pin", &pin_text, "--data-dir", &local_dir][..], &memory].concat(),
        dir.path(),
        "local",
        None,
    );
    let remote_args =
        [&["worker", "--coordinator", &url, "--pin", &pin_text, "--data-dir", &remote_dir][..], &memory].concat();
    let _remote = spawn(&remote_args, dir.path(), "remote", Some(&netns.name));
    let remote_id: WorkerId =
        iog_host::Identity::load_or_create(std::path::Path::new(&remote_dir)).unwrap().worker_id();
    // Both online and through their join challenge, so both take tiles.
    while client.workers().await.unwrap().iter().filter(|w| w.online && !w.challenging).count() < 2 {
        assert!(Instant::now() < deadline, "workers did not join");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let job_file = write_render_job(dir.path(), 192, 128, 16, 320);
    let spec = iog_workloads::parse_job_file(&std::fs::read_to_string(&job_file).unwrap(), dir.path()).unwrap();
    let job_id = client.submit(serde_json::to_value(&spec).unwrap()).await.unwrap().job_id;
    // Let the remote worker work across the lossy link, then cut it off
    // while it holds a lease. A lost packet stalls the remote worker for a
    // retransmission timeout or more, so the job has 96 tiles: enough that
    // the local worker alone cannot finish it first.
    loop {
        let status = client.job(job_id).await.unwrap();
        if status.workers.iter().any(|w| w.worker_id == remote_id && w.n_leased > 0 && w.n_committed >= 3) {
            break;
        }
        assert!(
            !status.state.is_final(),
            "the job ended ({:?}) before the remote worker held a lease after a commit: {:?}",
            status.state,
            status.workers.iter().map(|w| (w.worker_id == remote_id, w.n_leased, w.n_committed)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    netns.link(false);
    let db = std::path::Path::new(&coordinator_dir).join("coordinator.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}?mode=ro", db.display())).await.unwrap();
    let cut_off: Vec<(i64, i64)> =
        sqlx::query_as("SELECT task_idx, lease_token FROM tasks WHERE job_id = ? AND lease_worker = ?")
            .bind(job_id.0 as i64)
            .bind(&remote_id.0)
            .fetch_all(&pool)
            .await
            .unwrap();
    // Long enough for the coordinator to declare it dead and re-lease its
    // tasks, and for the worker to finish what it was running.
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    netns.link(true);

    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        let status = client.job(job_id).await.unwrap();
        if status.is_settled() {
            break status;
        }
        assert!(Instant::now() < deadline, "job did not finish after the partition healed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.state, JobState::Done);
    for (task_idx, token) in &cut_off {
        let (worker, committed_token): (String, i64) =
            sqlx::query_as("SELECT worker_id, lease_token FROM commits WHERE job_id = ? AND task_idx = ?")
                .bind(job_id.0 as i64)
                .bind(task_idx)
                .fetch_one(&pool)
                .await
                .unwrap();
        assert!(
            committed_token > *token,
            "task {task_idx} was committed under the partitioned lease {token} (by {worker})"
        );
    }
    let n_commits: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM commits WHERE job_id = ?")
        .bind(job_id.0 as i64)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n_commits as u32, status.n_tasks, "each task committed exactly once");
    println!("partition fenced off {} lease(s): {cut_off:?}", cut_off.len());
    if let Some((seen, dropped)) = netns.nft_counts() {
        println!("nftables dropped {dropped} of {seen} packets on the worker's link");
    }
    let png = client.get_blob(status.artifacts[0].blob).await.unwrap();
    let (_, _, rgb) = decode_png(&png);
    assert!(rgb == reference_render(&job_file).2, "the image matches a single-process render");
}
