//! Real processes on loopback: a coordinator and workers started from the
//! built `iog` binary, each with its own data directory.

#![allow(dead_code)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use iog_client::{Client, Fingerprint};
use iog_proto::api::JobStatus;
use iog_types::{JobId, WorkerId};

pub const IOG: &str = env!("CARGO_BIN_EXE_iog");
/// Heartbeats every 100 ms, dead after 3 missed: failures are noticed in 0.3 s.
pub const HEARTBEAT_MS: &str = "100";
/// Memory each test worker lends, and fills in its hardware challenges:
/// 64 MiB, as `--memory-gib` and in bytes. Many workers share this machine.
pub const WORKER_MEMORY_GIB: &str = "0.0625";
#[allow(dead_code)]
pub const WORKER_MEMORY_BYTES: u64 = 64 << 20;

pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

/// A free port on loopback (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A child process that is killed when dropped, with its output in a log file.
pub struct Proc {
    pub child: Child,
    pub log: PathBuf,
}

impl Proc {
    pub fn spawn(args: &[&str], log: PathBuf) -> Proc {
        let out = File::create(&log).unwrap();
        let child = Command::new(IOG)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("spawn iog");
        Proc { child, log }
    }

    /// `kill -9`: no chance to clean up.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A coordinator process and worker processes in one temporary directory.
pub struct Cluster {
    /// Extra flags for every start of the coordinator.
    pub coordinator_flags: Vec<String>,
    /// Extra flags for every start of a worker (`--price 36`, …).
    pub worker_flags: Vec<String>,
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub coordinator: Option<Proc>,
    pub workers: Vec<(WorkerId, Proc)>,
    /// Acts for the test's wallet, pinned to the coordinator's certificate.
    pub client: Client,
    /// The fingerprint of the coordinator's self-signed certificate, made
    /// on its first start and kept in its data dir.
    pub pin: Fingerprint,
}

impl Cluster {
    pub async fn start(n_workers: usize) -> Cluster {
        Cluster::start_with(n_workers, &[]).await
    }

    /// A cluster whose coordinator gets `flags` on top of the defaults.
    pub async fn start_with(n_workers: usize, flags: &[&str]) -> Cluster {
        Cluster::start_full(n_workers, flags, &[]).await
    }

    /// A cluster whose coordinator gets `flags` and whose workers get
    /// `worker_flags` on top of the defaults.
    pub async fn start_full(n_workers: usize, flags: &[&str], worker_flags: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        // Replaced once the coordinator has made its certificate.
        let client = Client::new(&format!("http://127.0.0.1:{port}")).unwrap();
        let pin = Fingerprint([0; 32]);
        let coordinator_flags = flags.iter().map(|f| (*f).to_owned()).collect();
        let worker_flags = worker_flags.iter().map(|f| (*f).to_owned()).collect();
        let mut cluster =
            Cluster { coordinator_flags, worker_flags, dir, port, coordinator: None, workers: Vec::new(), client, pin };
        cluster.start_coordinator().await;
        for idx in 0..n_workers {
            cluster.start_worker(idx);
        }
        cluster.wait_for_online(n_workers).await;
        cluster
    }

    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The wallet the CLI and `client` act for.
    pub fn wallet_dir(&self) -> PathBuf {
        self.dir.path().join("wallet")
    }

    /// A client acting for the wallet (or worker) key in `dir`.
    pub fn client_for(&self, dir: &Path) -> Client {
        let identity = iog_host::Identity::load_or_create(dir).unwrap();
        Client::connect(&self.url(), Some(self.pin)).unwrap().with_identity(identity)
    }

    pub fn coordinator_dir(&self) -> PathBuf {
        self.dir.path().join("coordinator")
    }

    pub async fn start_coordinator(&mut self) {
        let data_dir = self.coordinator_dir();
        let listen = format!("127.0.0.1:{}", self.port);
        let n = std::fs::read_dir(self.dir.path()).unwrap().count();
        let log = self.dir.path().join(format!("coordinator-{n}.log"));
        let args = [
            "coordinator",
            "--data-dir",
            data_dir.to_str().unwrap(),
            "--listen",
            &listen,
            "--heartbeat-interval-ms",
            HEARTBEAT_MS,
            "--retry-backoff-ms",
            "20",
        ];
        let mut args: Vec<&str> = args.to_vec();
        // Test workers share this machine, as a development network's do:
        // a short walk, and the development network's allowance, so that a
        // busy test host never fails an honest worker's round.
        if !self.coordinator_flags.iter().any(|flag| flag == "--challenge-walk-steps") {
            args.extend(["--challenge-walk-steps", "65536"]);
        }
        if !self.coordinator_flags.iter().any(|flag| flag == "--challenge-allowance-ms") {
            args.extend(["--challenge-allowance-ms", "2000"]);
        }
        args.extend(self.coordinator_flags.iter().map(String::as_str));
        self.coordinator = Some(Proc::spawn(&args, log));
        let deadline = Instant::now() + Duration::from_secs(30);
        // The coordinator writes its pin before it listens; the test's
        // wallet, which the CLI uses too (IOG_WALLET_DIR), then reads
        // what the CLI submits.
        let pin_file = data_dir.join(iog_coordinator::PIN_FILE_NAME);
        let pin = loop {
            if let Some(pin) = std::fs::read_to_string(&pin_file).ok().and_then(|text| text.parse().ok()) {
                break pin;
            }
            assert!(Instant::now() < deadline, "no pin:\n{}", self.coordinator.as_ref().unwrap().log_text());
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        self.pin = pin;
        self.client = self.client_for(&self.wallet_dir());
        while self.client.health().await.is_err() {
            assert!(
                Instant::now() < deadline,
                "coordinator did not come up:\n{}",
                self.coordinator.as_ref().unwrap().log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills worker `idx` with SIGKILL and starts it again, on the same data
    /// dir or, with `wipe`, on an emptied one (a new identity).
    pub fn restart_worker(&mut self, idx: usize, wipe: bool) {
        self.workers[idx].1.kill9();
        let data_dir = self.dir.path().join(format!("worker-{idx}"));
        if wipe {
            std::fs::remove_dir_all(&data_dir).unwrap();
        }
        let worker_id = iog_host::Identity::load_or_create(&data_dir).unwrap().worker_id();
        let n = std::fs::read_dir(self.dir.path()).unwrap().count();
        let log = self.dir.path().join(format!("worker-{idx}-{n}.log"));
        let (url, pin) = (self.url(), self.pin.to_string());
        let mut args = vec!["worker", "--coordinator", &url, "--pin", &pin, "--data-dir", data_dir.to_str().unwrap()];
        args.extend(self.worker_flags.iter().map(String::as_str));
        if !self.worker_flags.iter().any(|flag| flag == "--memory-gib") {
            args.extend(["--memory-gib", WORKER_MEMORY_GIB]);
        }
        self.workers[idx] = (worker_id, Proc::spawn(&args, log));
    }

    pub fn start_worker(&mut self, idx: usize) {
        let data_dir = self.dir.path().join(format!("worker-{idx}"));
        let worker_id = iog_host::Identity::load_or_create(&data_dir).unwrap().worker_id();
        let log = self.dir.path().join(format!("worker-{idx}.log"));
        let (url, pin) = (self.url(), self.pin.to_string());
        let mut args = vec!["worker", "--coordinator", &url, "--pin", &pin, "--data-dir", data_dir.to_str().unwrap()];
        args.extend(self.worker_flags.iter().map(String::as_str));
        if !self.worker_flags.iter().any(|flag| flag == "--memory-gib") {
            args.extend(["--memory-gib", WORKER_MEMORY_GIB]);
        }
        self.workers.push((worker_id, Proc::spawn(&args, log)));
    }

    pub async fn wait_for_online(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Online, through the hardware challenge every worker takes when
            // it joins, and free to take tasks, so placement sees them all.
            if let Ok(workers) = self.client.workers().await
                && workers.iter().filter(|w| w.online && !w.challenging && w.available).count() >= n
            {
                return;
            }
            assert!(Instant::now() < deadline, "{n} workers did not come online:\n{}", self.logs());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Runs the iog CLI against this cluster.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(IOG)
            .args(args)
            .env("IOG_COORDINATOR", self.url())
            .env("IOG_WALLET_DIR", self.wallet_dir())
            .env("IOG_PIN", self.pin.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run iog")
    }

    /// Waits until `until` holds for the job's status, or panics with the logs.
    pub async fn wait_job(&self, job_id: JobId, timeout: Duration, until: impl Fn(&JobStatus) -> bool) -> JobStatus {
        let deadline = Instant::now() + timeout;
        loop {
            let status = self.client.job(job_id).await;
            if let Ok(status) = &status
                && until(status)
            {
                return status.clone();
            }
            if Instant::now() >= deadline {
                let tasks = self.client.tasks(job_id).await;
                let workers = self.client.workers().await;
                panic!(
                    "job {job_id} did not get there in {timeout:?}\nstatus: {status:?}\ntasks: {tasks:?}\n\
                     workers: {workers:?}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn logs(&self) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.dir.path()).unwrap().flatten() {
            if entry.path().extension().is_some_and(|e| e == "log") {
                let body = std::fs::read_to_string(entry.path()).unwrap_or_default();
                let tail: Vec<&str> = body.lines().rev().take(40).collect();
                text.push_str(&format!("--- {}\n", entry.path().display()));
                for line in tail.into_iter().rev() {
                    text.push_str(line);
                    text.push('\n');
                }
            }
        }
        text
    }
}

/// A render job file using the example scene; `samples` sets its cost.
pub fn write_render_job(dir: &Path, width: u32, height: u32, tile_size: u32, samples: u32) -> PathBuf {
    let scene = examples_dir().join("scenes/cornell.toml");
    let text = format!(
        "[job]\nname = \"test-render\"\nworkload = \"render\"\nmax_attempts = 10\n\n[render]\nscene = {scene:?}\n\
         width = {width}\nheight = {height}\ntile_size = {tile_size}\nsamples_per_pixel = {samples}\nseed = 11\n",
        scene = scene.to_str().unwrap()
    );
    let path = dir.join(format!("render-{width}x{height}-{samples}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Submits a job file through the CLI and returns its id.
pub fn submit(cluster: &Cluster, file: &Path) -> JobId {
    let out = cluster.cli(&["job", "submit", file.to_str().unwrap()]);
    assert!(out.status.success(), "submit failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
}

/// Decodes a PNG into (width, height, RGB8 bytes).
pub fn decode_png(bytes: &[u8]) -> (u32, u32, Vec<u8>) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width, info.height, buf)
}

/// The image the job file describes, rendered in this process in one piece.
pub fn reference_render(file: &Path) -> (u32, u32, Vec<u8>) {
    let text = std::fs::read_to_string(file).unwrap();
    let spec = iog_workloads::parse_job_file(&text, file.parent().unwrap()).unwrap();
    let render = spec.render.unwrap();
    let rgb = iog_workloads::render::render_image(&render).unwrap();
    (render.width, render.height, rgb)
}

/// What an honest single machine computes for the job: each task's output
/// digest and the assembled `result.json`.
pub fn reference(file: &Path) -> (Vec<iog_types::BlobId>, Vec<u8>) {
    let spec = iog_workloads::parse_job_file(&std::fs::read_to_string(file).unwrap(), file.parent().unwrap()).unwrap();
    let workload = spec.workload().unwrap();
    let mut inputs = iog_workloads::plan(&workload).unwrap();
    let mut outputs: Vec<Vec<u8>> = inputs.iter().map(|input| iog_workloads::run_task(input).unwrap().output).collect();
    // A chained job's links of tasks are made one after another from the
    // last link's inputs and outputs.
    let width = inputs.len();
    let mut state: Option<Vec<u8>> = None;
    while (inputs.len() as u64) < iog_workloads::chain_length(&workload).unwrap_or(0) {
        let start = inputs.len() - width;
        let previous: Vec<(Vec<u8>, Vec<u8>)> =
            inputs[start..].iter().cloned().zip(outputs[start..].iter().cloned()).collect();
        let link = iog_workloads::next_inputs(&workload, inputs.len() as u64, &previous, state.as_deref()).unwrap();
        state = link.state;
        outputs.extend(link.inputs.iter().map(|input| iog_workloads::run_task(input).unwrap().output));
        inputs.extend(link.inputs);
    }
    let digests = outputs.iter().map(|output| iog_types::BlobId::of(output)).collect();
    let durations = vec![1; outputs.len()];
    let artifacts = iog_workloads::assemble(&workload, &outputs, &durations).unwrap();
    let result = artifacts.into_iter().find(|a| a.name == "result.json").unwrap();
    (digests, result.bytes)
}

/// Starts a worker in this process, with one slot, that behaves as `cheat`
/// says (the test-only `cheats` feature); `edit` sets anything else.
pub async fn start_in_process(
    cluster: &Cluster,
    name: &str,
    cheat: iog_worker::Cheat,
    edit: impl FnOnce(&mut iog_worker::WorkerConfig),
) -> iog_worker::WorkerHandle {
    let mut config = iog_worker::WorkerConfig::new(cluster.url(), cluster.dir.path().join(name));
    config.coordinator_pin = Some(cluster.pin);
    config.terms.memory_lent_bytes = Some(WORKER_MEMORY_BYTES);
    config.cheat = Some(cheat);
    config.probe_bind = None;
    config.slots = 1;
    edit(&mut config);
    iog_worker::start(config).await.unwrap()
}

/// Gives the worker whose data dir is `name` 10 IO of stake, from the
/// development faucet; returns its worker id.
pub fn stake(cluster: &Cluster, name: &str) -> WorkerId {
    let dir = cluster.dir.path().join(name);
    let worker_id = iog_host::Identity::load_or_create(&dir).unwrap().worker_id();
    for args in [["wallet", "faucet", "10", "--wallet-dir"], ["worker", "stake", "10", "--data-dir"]] {
        let out = cluster.cli(&[&args[..], &[dir.to_str().unwrap()]].concat());
        assert!(out.status.success(), "iog {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    worker_id
}
