//! `iog wallet …` and `iog ledger …`

use std::process::ExitCode;

use anyhow::{Context, bail};
use iog_client::Client;
use iog_host::Identity;
use iog_ledger::{Address, Entry, Journal, Ledger};

use crate::args::{Global, LedgerArgs, LedgerCommand, WalletArgs, WalletCommand};
use crate::display::print_json;

/// This machine's wallet address, from the key in `wallet_dir` (created when absent).
fn own_address(wallet_dir: &std::path::Path) -> anyhow::Result<Address> {
    let identity = Identity::load_or_create(wallet_dir).context("load wallet key")?;
    Ok(Address::from_public_key(identity.public_key_bytes()))
}

pub async fn wallet(global: &Global, args: WalletArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        WalletCommand::New => {
            let address = own_address(&args.wallet_dir)?;
            if global.json {
                print_json(&serde_json::json!({ "address": address.to_string(), "dir": args.wallet_dir }))?;
            } else {
                println!("{address}");
                eprintln!(
                    "key kept in {}; back it up: it is the only way to spend this wallet",
                    args.wallet_dir.display()
                );
            }
        }
        WalletCommand::Balance { address } => {
            let address = match address {
                Some(text) => text.parse::<Address>().map_err(|err| anyhow::anyhow!("address {text:?}: {err}"))?,
                None => own_address(&args.wallet_dir)?,
            };
            let status = Client::new(&global.coordinator)?.wallet(&address.to_string()).await?;
            if global.json {
                print_json(&status)?;
            } else {
                println!(
                    "{}: {} available ({} held, {} in all)",
                    status.address, status.available, status.held, status.posted
                );
            }
        }
        WalletCommand::Faucet { amount } => {
            let address = own_address(&args.wallet_dir)?;
            let request_id = format!("t-{:032x}", rand::random::<u128>());
            let status = Client::new(&global.coordinator)?.faucet(&address.to_string(), &amount, &request_id).await?;
            if global.json {
                print_json(&status)?;
            } else {
                println!("{}: {} available", status.address, status.available);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn ledger(global: &Global, args: LedgerArgs) -> anyhow::Result<ExitCode> {
    let LedgerCommand::Verify { data_dir } = args.command;
    if !data_dir.join("coordinator.db").is_file() {
        bail!("{} holds no coordinator store (coordinator.db); pass the coordinator's --data-dir", data_dir.display());
    }
    let store = iog_store::Store::open(&data_dir).await.context("open store")?;
    let rows = store.journal().await.context("read journal")?;
    store.close().await;
    let mut entries: Vec<Entry> = Vec::with_capacity(rows.len());
    for (seq, bytes) in &rows {
        let entry = Entry::decode(bytes).map_err(|err| anyhow::anyhow!("journal row {seq} does not decode: {err}"))?;
        if entry.seq != *seq {
            bail!("journal row {seq} holds entry {}; rows were reordered or removed", entry.seq);
        }
        entries.push(entry);
    }
    let checkpoint = Journal::verify(&entries)
        .map_err(|err| anyhow::anyhow!("journal row {} breaks the hash chain: {err}", err.seq()))?;
    let ledger = Ledger::replay(&entries).map_err(|err| anyhow::anyhow!("replaying the journal failed: {err}"))?;
    ledger.check().map_err(|broken| anyhow::anyhow!("ledger rule broken: {broken}"))?;
    let head = hex::encode(checkpoint.head_hash);
    if global.json {
        print_json(&serde_json::json!({
            "ok": true,
            "entries": entries.len(),
            "supply": ledger.supply().to_string(),
            "head_hash": head,
        }))?;
    } else {
        println!(
            "ledger ok: {} journal entries, chain intact (head {}), supply {}, balances conserved, none negative",
            entries.len(),
            &head[..16],
            ledger.supply()
        );
    }
    Ok(ExitCode::SUCCESS)
}
