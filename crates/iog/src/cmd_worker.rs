//! `iog worker …`

use std::process::ExitCode;

use anyhow::Context;
use iog_client::Client;
use iog_worker::WorkerConfig;

use crate::args::{Global, WorkerArgs, WorkerCommand};
use crate::display::{self, print_json};

pub async fn worker(global: &Global, args: WorkerArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(WorkerCommand::Devices) => {
            let report = tokio::task::spawn_blocking(iog_host::discover_devices).await?;
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
            let client = Client::new(&global.coordinator)?;
            let workers = client.workers().await?;
            if global.json {
                print_json(&workers)?;
            } else {
                let mut table = display::table(&["worker", "online", "devices", "slots", "running", "version"]);
                for w in workers {
                    let devices: Vec<String> = w.devices.iter().map(|d| format!("{} {}", d.name, d.model)).collect();
                    table.add_row(vec![
                        w.worker_id.to_string(),
                        if w.online { "yes" } else { "no" }.to_owned(),
                        devices.join(", "),
                        w.slots.to_string(),
                        w.n_leases.to_string(),
                        w.agent_version,
                    ]);
                }
                println!("{table}");
            }
        }
        Some(WorkerCommand::Earnings { data_dir, limit }) => {
            if !data_dir.join(iog_host::KEY_FILE_NAME).is_file() {
                anyhow::bail!("{} holds no worker key; pass the --data-dir the worker runs with", data_dir.display());
            }
            let identity = iog_host::Identity::load_or_create(&data_dir).context("load worker key")?;
            let account = iog_ledger::AccountId::Payout(identity.worker_id().0).to_string();
            let client = Client::new(&global.coordinator)?;
            let status = client.account(&account).await?;
            if global.json {
                let history = client.history(&account, limit).await?;
                print_json(&serde_json::json!({ "account": status, "history": history }))?;
            } else {
                println!("worker {}: {} earned and not withdrawn", identity.worker_id(), status.available);
                crate::cmd_ledger::print_history(global, &client, &account, limit).await?;
            }
        }
        None => {
            let mut config = WorkerConfig::new(global.coordinator.clone(), args.data_dir);
            config.slots = args.slots;
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
