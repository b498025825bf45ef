//! `iog worker …`

use std::process::ExitCode;

use anyhow::Context;
use iog_worker::WorkerConfig;

use crate::args::{Global, WorkerArgs, WorkerCommand};
use crate::display::{self, print_json};

pub async fn worker(global: &Global, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(WorkerCommand::Devices { gpu_software }) => {
            anyhow::ensure!(
                !gpu_software || iog_worker::GPU_BUILT_IN,
                "--gpu-software: this iog was built without GPU kernels; build it with \
                 `cargo build --release --features gpu`"
            );
            let gpu = iog_worker::GpuKernels { enabled: true, software: gpu_software };
            let report = tokio::task::spawn_blocking(move || iog_worker::discover(gpu)).await?;
            if global.json {
                print_json(&serde_json::json!({ "devices": report.devices, "notes": report.notes }))?;
            } else {
                let mut table = display::table(&["name", "kind", "vendor", "model", "memory", "units", "found by"]);
                for d in &report.devices {
                    table.add_row(vec![
                        d.name.clone(),
                        format!("{:?}", d.kind).to_lowercase(),
                        d.vendor.clone(),
                        d.model.clone(),
                        display::bytes(d.memory_bytes),
                        d.compute_units.to_string(),
                        d.source.clone(),
                    ]);
                }
                println!("{table}");
                for note in &report.notes {
                    println!("note: {note}");
                }
            }
        }
        Some(WorkerCommand::List) => {
            let client = global.client()?;
            let workers = client.workers().await?;
            if global.json {
                print_json(&workers)?;
            } else {
                let mut table = display::table(&[
                    "worker",
                    "state",
                    "trust",
                    "reputation",
                    "challenges",
                    "region",
                    "price/device-h",
                    "devices",
                    "in use",
                    "version",
                ]);
                for w in workers {
                    let offer = w.offer.as_ref();
                    let groups: Vec<String> =
                        offer.map(|o| o.groups.iter().map(display::group).collect()).unwrap_or_default();
                    table.add_row(vec![
                        w.worker_id.to_string(),
                        display::worker_state(&w).to_owned(),
                        w.trust.to_string(),
                        format!("{:.3}", f64::from(w.reputation_milli) / 1000.0),
                        format!("{} passed, {} failed", w.challenges_passed, w.challenges_failed),
                        offer.map_or_else(|| "-".to_owned(), |o| o.region.clone()),
                        offer.map_or_else(|| "-".to_owned(), |o| o.price_io_per_device_hour.to_string()),
                        groups.join(", "),
                        w.in_use.iter().sum::<u32>().to_string(),
                        w.agent_version,
                    ]);
                }
                println!("{table}");
            }
        }
        Some(WorkerCommand::Show { worker_id }) => {
            let client = global.client()?;
            let workers = client.workers().await?;
            let matching: Vec<_> = workers.into_iter().filter(|w| w.worker_id.0.starts_with(&worker_id)).collect();
            let worker = match matching.as_slice() {
                [one] => one,
                [] => anyhow::bail!(
                    "the coordinator at {} knows no worker whose id starts with {worker_id:?}; `iog worker list` shows them",
                    global.coordinator
                ),
                many => {
                    anyhow::bail!("{} workers have ids starting with {worker_id:?}; give more of the id", many.len())
                }
            };
            if global.json {
                print_json(worker)?;
            } else {
                display::print_offer(worker);
            }
        }
        Some(WorkerCommand::Offers { data_dir }) => {
            let identity = worker_key(&data_dir)?;
            let client = global.client()?;
            let workers = client.workers().await?;
            let Some(me) = workers.into_iter().find(|w| w.worker_id == identity.worker_id()) else {
                anyhow::bail!(
                    "the coordinator at {} has never seen worker {}; start it with `iog worker --data-dir {}`",
                    global.coordinator,
                    identity.worker_id(),
                    data_dir.display()
                );
            };
            if global.json {
                print_json(&me)?;
            } else {
                display::print_offer(&me);
            }
        }
        Some(WorkerCommand::Stake { amount, data_dir }) => change_stake(global, &data_dir, &amount, false).await?,
        Some(WorkerCommand::Unstake { amount, data_dir }) => change_stake(global, &data_dir, &amount, true).await?,
        Some(WorkerCommand::Withdraw { amount, data_dir }) => withdraw(global, &data_dir, &amount).await?,
        Some(WorkerCommand::Earnings { data_dir, limit }) => {
            let identity = worker_key(&data_dir)?;
            let account = iog_ledger::AccountId::Payout(identity.worker_id().0).to_string();
            let client = global.client()?;
            let status = client.account(&account).await?;
            if global.json {
                let history = client.history(&account, limit).await?;
                print_json(&serde_json::json!({ "account": status, "history": history }))?;
            } else {
                println!("worker {}: {} earned and not withdrawn", identity.worker_id(), status.available);
                let stake = client.stake_status(&identity.worker_id().0).await?;
                println!("  staked: {} ({} unstaking)", stake.active, stake.unstaking);
                crate::cmd_ledger::print_history(global, &client, &account, limit).await?;
            }
        }
        None => {
            let mut config = WorkerConfig::new(global.coordinator.clone(), args.data_dir);
            config.coordinator_pin = global.pin;
            config.slots = args.slots;
            if let Some(region) = args.region {
                if !iog_sched::offer::valid_region(&region) {
                    anyhow::bail!(
                        "--region must be lowercase letters, digits and '-' (like eu or us-east), got {region:?}"
                    );
                }
                config.terms.region = region;
            }
            if let Some(price) = args.price {
                config.terms.price_io_per_device_hour = price.parse().map_err(|err| {
                    anyhow::anyhow!("--price must be an amount of IO such as 0.5, got {price:?}: {err}")
                })?;
            }
            if let Some(gib) = args.memory_gib {
                let bytes = iog_worker::memory_gib_bytes("--memory-gib", gib).map_err(|err| anyhow::anyhow!(err))?;
                config.terms.memory_lent_bytes = Some(bytes);
            }
            if args.no_probe {
                config.probe_bind = None;
            } else if let Some(port) = args.probe_port {
                config.probe_bind = Some(std::net::SocketAddr::new(iog_worker::PROBE_BIND_DEFAULT.ip(), port));
            }
            if args.wasm {
                anyhow::ensure!(
                    iog_worker::WASM_BUILT_IN,
                    "--wasm: this iog was built without the WebAssembly executor; build it with \
                     `cargo build --release --features wasm`"
                );
                config.executors.wasm = Some(iog_worker::WASM_CAPS_DEFAULT);
            }
            if args.process {
                config.executors.process = Some(iog_worker::ProcessCaps::default_caps());
            }
            if args.gpu_software {
                anyhow::ensure!(
                    iog_worker::GPU_BUILT_IN,
                    "--gpu-software: this iog was built without GPU kernels; build it with \
                     `cargo build --release --features gpu`"
                );
                config.gpu.software = true;
            }
            config.gpu.enabled = !args.no_gpu_kernels;
            config.config_file = args.config;
            let mut handle = iog_worker::start(config).await.context("start worker")?;
            tracing::info!(worker_id = %handle.worker_id(), coordinator = %global.coordinator, "worker started");
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {
                    tracing::info!("interrupted; stopping");
                    handle.shutdown().await;
                }
                stopped = handle.wait() => stopped?,
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads the worker key in `data_dir`, refusing to create one.
fn worker_key(data_dir: &std::path::Path) -> anyhow::Result<iog_host::Identity> {
    if !data_dir.join(iog_host::KEY_FILE_NAME).is_file() {
        anyhow::bail!("{} holds no worker key; pass the --data-dir the worker runs with", data_dir.display());
    }
    iog_host::Identity::load_or_create(data_dir).context("load worker key")
}

/// A request for `verb` on `amount`, signed with the worker's key.
fn signed_request(
    identity: &iog_host::Identity,
    verb: &str,
    amount: iog_ledger::Amount,
) -> iog_proto::api::StakeRequest {
    let request_id = format!("t-{:032x}", rand::random::<u128>());
    let message =
        iog_proto::api::worker_signing_message(&identity.worker_id().0, verb, amount.base_units(), &request_id);
    iog_proto::api::StakeRequest {
        amount: amount.to_string(),
        request_id,
        signature: hex::encode(identity.sign(&message)),
    }
}

/// `iog worker withdraw`: earnings to the worker's own wallet.
async fn withdraw(global: &Global, data_dir: &std::path::Path, amount: &str) -> anyhow::Result<()> {
    let identity = worker_key(data_dir)?;
    let io: iog_ledger::Amount = amount.parse().map_err(|err| anyhow::anyhow!("amount {amount:?}: {err}"))?;
    let request = signed_request(&identity, "withdraw", io);
    let wallet = global.client()?.withdraw(&identity.worker_id().0, &request).await?;
    if global.json {
        return print_json(&wallet);
    }
    println!("withdrew {io}; the worker's wallet {} has {} available", wallet.address, wallet.available);
    Ok(())
}

/// `iog worker stake` and `iog worker unstake`: signed with the worker's key.
async fn change_stake(global: &Global, data_dir: &std::path::Path, amount: &str, unstake: bool) -> anyhow::Result<()> {
    let identity = worker_key(data_dir)?;
    let worker_id = identity.worker_id().0;
    let io: iog_ledger::Amount = amount.parse().map_err(|err| anyhow::anyhow!("amount {amount:?}: {err}"))?;
    let verb = if unstake { "unstake" } else { "stake" };
    let request = signed_request(&identity, verb, io);
    let status = global.client()?.change_stake(&worker_id, unstake, &request).await?;
    if global.json {
        return print_json(&status);
    }
    match status.unstaked_at_ms {
        Some(at_ms) => {
            let wait_ms = at_ms.saturating_sub(now_ms());
            println!("unstaking {io}: it reaches the worker's wallet in {}", display::millis(wait_ms));
        }
        None => println!("staked {io}"),
    }
    println!("worker {worker_id}: {} staked ({} unstaking)", status.active, status.unstaking);
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
