//! `iog wallet …` and `iog ledger …`

use std::process::ExitCode;

use anyhow::{Context, bail};
use iog_client::Client;
use iog_host::Identity;
use iog_ledger::{AccountId, Address, Amount, Entry, Journal, Ledger};
use iog_proto::api::{PaymentAuthorization, SendRequest};

use crate::args::{Global, LedgerArgs, LedgerCommand, WalletArgs, WalletCommand};
use crate::display::print_json;

/// This machine's wallet address, from the key in `wallet_dir` (created when absent).
fn own_address(wallet_dir: &std::path::Path) -> anyhow::Result<Address> {
    let identity = Identity::load_or_create(wallet_dir).context("load wallet key")?;
    Ok(Address::from_public_key(identity.public_key_bytes()))
}

/// A fresh request id, `t-<32 hex>`.
fn new_request_id() -> String {
    format!("t-{:032x}", rand::random::<u128>())
}

/// Turns a job spec into what `POST /v1/jobs` takes: a spec with a
/// `[payment]` section gets the wallet in `wallet_dir` as its payer (when it
/// names none) and that wallet's signature over the exact bytes sent.
pub fn authorize_job(
    mut spec: iog_workloads::JobSpec,
    wallet_dir: &std::path::Path,
) -> anyhow::Result<(serde_json::Value, Option<PaymentAuthorization>)> {
    let Some(payment) = spec.payment.as_mut() else {
        return Ok((serde_json::to_value(&spec)?, None));
    };
    if !wallet_dir.join(iog_host::KEY_FILE_NAME).is_file() {
        bail!(
            "the job has a [payment] section but {} holds no wallet key; create one with `iog wallet new` \
             (and fund it), or pass --wallet-dir",
            wallet_dir.display()
        );
    }
    let identity = Identity::load_or_create(wallet_dir).context("load wallet key")?;
    let own = Address::from_public_key(identity.public_key_bytes());
    match &payment.wallet {
        Some(named) if *named != own.to_string() => bail!(
            "payment.wallet is {named} but the key in {} is wallet {own}'s; only a wallet's own key signs its \
             payments (remove payment.wallet to pay from {own})",
            wallet_dir.display()
        ),
        Some(_) => {}
        None => payment.wallet = Some(own.to_string()),
    }
    let value = serde_json::to_value(&spec)?;
    let request_id = new_request_id();
    let message = iog_proto::api::submit_signing_message(&request_id, &serde_json::to_vec(&value)?);
    let signature = hex::encode(identity.sign(&message));
    Ok((value, Some(PaymentAuthorization { request_id, signature })))
}

pub async fn wallet(global: &Global, args: WalletArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        WalletCommand::New => {
            let address = own_address(&global.wallet_dir)?;
            if global.json {
                print_json(&serde_json::json!({ "address": address.to_string(), "dir": global.wallet_dir }))?;
            } else {
                println!("{address}");
                eprintln!(
                    "key kept in {}; back it up: it is the only way to spend this wallet",
                    global.wallet_dir.display()
                );
            }
        }
        WalletCommand::Balance { address } => {
            let address = match address {
                Some(text) => text.parse::<Address>().map_err(|err| anyhow::anyhow!("address {text:?}: {err}"))?,
                None => own_address(&global.wallet_dir)?,
            };
            let status = global.client()?.wallet(&address.to_string()).await?;
            if global.json {
                print_json(&status)?;
            } else {
                println!(
                    "{}: {} available ({} held, {} in all)",
                    status.address, status.available, status.held, status.posted
                );
            }
        }
        WalletCommand::Send { to, amount } => {
            let identity = Identity::load_or_create(&global.wallet_dir).context("load wallet key")?;
            let from = Address::from_public_key(identity.public_key_bytes());
            let to_address = to.parse::<Address>().map_err(|err| anyhow::anyhow!("address {to:?}: {err}"))?;
            let io = amount.parse::<Amount>().map_err(|err| anyhow::anyhow!("amount {amount:?}: {err}"))?;
            let request_id = new_request_id();
            let message = iog_proto::api::send_signing_message(
                &from.to_string(),
                &to_address.to_string(),
                io.base_units(),
                &request_id,
            );
            let request = SendRequest {
                to: to_address.to_string(),
                amount: io.to_string(),
                request_id,
                signature: hex::encode(identity.sign(&message)),
            };
            let status = global.client()?.send_io(&from.to_string(), &request).await?;
            if global.json {
                print_json(&status)?;
            } else {
                println!("sent {io} to {to_address}; {}: {} available", status.address, status.available);
            }
        }
        WalletCommand::History { address, limit } => {
            let address = match address {
                Some(text) => text.parse::<Address>().map_err(|err| anyhow::anyhow!("address {text:?}: {err}"))?,
                None => own_address(&global.wallet_dir)?,
            };
            let account = AccountId::Wallet(address).to_string();
            print_history(global, &global.client()?, &account, limit).await?;
        }
        WalletCommand::Token => {
            let token = global.authed_client()?.bearer_token().await.context("get a token")?;
            if global.json {
                print_json(&token)?;
            } else {
                println!("{}", token.token);
            }
        }
        WalletCommand::Faucet { amount } => {
            let address = own_address(&global.wallet_dir)?;
            let request_id = new_request_id();
            let status = global.authed_client()?.faucet(&address.to_string(), &amount, &request_id).await?;
            if global.json {
                print_json(&status)?;
            } else {
                println!("{}: {} available", status.address, status.available);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the newest ledger operations of `account`.
pub async fn print_history(global: &Global, client: &Client, account: &str, limit: usize) -> anyhow::Result<()> {
    let entries = client.history(account, limit).await?;
    if global.json {
        return print_json(&entries);
    }
    if entries.is_empty() {
        println!("no ledger operations touch {account} yet");
        return Ok(());
    }
    let mut table = crate::display::table(&["#", "kind", "operation", "refused"]);
    for entry in entries {
        table.add_row(vec![entry.seq.to_string(), entry.kind, entry.description, entry.refused.unwrap_or_default()]);
    }
    println!("{table}");
    Ok(())
}

/// Where `iog ledger verify` reads the ledger from: a coordinator's data dir
/// (stopped or running) or a running coordinator's API.
enum Audited {
    Store {
        store: iog_store::Store,
        data_dir: std::path::PathBuf,
    },
    /// Over the API, as the wallet in `--wallet-dir`: the journal and
    /// checkpoints are public, a job's tasks only its payer's.
    Api(Client, Address),
}

impl Audited {
    async fn checkpoints(&self) -> anyhow::Result<Vec<iog_store::SignedCheckpoint>> {
        match self {
            Audited::Store { store, .. } => Ok(store.checkpoints().await.context("read checkpoints")?),
            Audited::Api(client, _) => {
                let rows = client.checkpoints().await.context("read checkpoints")?;
                let decode = |what: &str, result: Result<Vec<u8>, String>| {
                    result.map_err(|err| anyhow::anyhow!("a checkpoint's {what} does not decode: {err}"))
                };
                rows.into_iter()
                    .map(|row| {
                        Ok(iog_store::SignedCheckpoint {
                            n_entries: row.n_entries,
                            head_hash: decode("head hash", hex::decode(&row.head_hash).map_err(|e| e.to_string()))?,
                            signer: decode("signer", bs58::decode(&row.signer).into_vec().map_err(|e| e.to_string()))?,
                            signature: decode("signature", hex::decode(&row.signature).map_err(|e| e.to_string()))?,
                            signed_ms: row.signed_ms,
                        })
                    })
                    .collect()
            }
        }
    }

    async fn journal(&self) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
        match self {
            Audited::Store { store, .. } => Ok(store.journal().await.context("read journal")?),
            Audited::Api(client, _) => {
                let mut rows = Vec::new();
                let mut after = None;
                loop {
                    let page = client.journal_page(after).await.context("read journal")?;
                    rows.extend(page.entries.into_iter().map(|row| (row.seq, row.entry)));
                    match page.next_after {
                        Some(next) => after = Some(next),
                        None => return Ok(rows),
                    }
                }
            }
        }
    }

    /// The key that must have signed the checkpoints, where it is known.
    async fn signer(&self) -> anyhow::Result<Option<[u8; 32]>> {
        match self {
            Audited::Store { data_dir, .. } => data_dir
                .join(iog_host::KEY_FILE_NAME)
                .is_file()
                .then(|| Identity::load_or_create(data_dir).map(|identity| identity.public_key_bytes()))
                .transpose()
                .context("load the coordinator's key"),
            Audited::Api(client, _) => {
                let health = client.health().await?;
                let bytes = bs58::decode(&health.ledger_signer).into_vec().unwrap_or_default();
                Ok(<[u8; 32]>::try_from(bytes.as_slice()).ok())
            }
        }
    }

    /// A paid job's cap per task-hour and its committed tasks and replicas:
    /// (task index, accepted by verification, worker, duration, price per hour).
    async fn paid_job(&self, job_id: iog_types::JobId) -> anyhow::Result<(Amount, Vec<CommittedRun>)> {
        match self {
            Audited::Store { store, .. } => {
                let record = store.job(job_id).await.context("read job")?.ok_or_else(|| {
                    anyhow::anyhow!("the journal holds an escrow for job {job_id}, which the store lacks")
                })?;
                let spec = iog_workloads::parse_job_json(&record.spec_json)
                    .map_err(|err| anyhow::anyhow!("stored spec of job {job_id}: {err}"))?;
                if spec.payment.is_none() {
                    anyhow::bail!("job {job_id} has an escrow but no [payment] in its spec");
                }
                let price = spec
                    .price_io_per_task_hour_max()
                    .map_err(|err| anyhow::anyhow!("stored spec of job {job_id}: {err}"))?;
                let tasks = store.tasks(job_id).await.context("read tasks")?;
                let committed = tasks
                    .into_iter()
                    .filter_map(|task| {
                        task.commit.map(|commit| {
                            let accepted = commit.verdict == Some(true);
                            let idx = task.task_id.task_idx;
                            (idx, accepted, commit.worker_id.0, commit.duration_ms, commit.price_io_per_hour)
                        })
                    })
                    .collect();
                Ok((price, committed))
            }
            Audited::Api(client, _) => {
                let bill = client.billing(job_id).await.with_context(|| format!("read the bill of job {job_id}"))?;
                let price = bill
                    .price_io_per_task_hour_max
                    .parse()
                    .map_err(|err| anyhow::anyhow!("price cap of job {job_id}: {err}"))?;
                let tasks = client.tasks(job_id).await.with_context(|| format!("read the tasks of job {job_id}"))?;
                let committed = tasks
                    .into_iter()
                    .filter_map(|task| {
                        let price = task.price_io_per_hour.as_deref().unwrap_or("0").parse().unwrap_or(Amount::MAX);
                        let accepted = task.verdict.as_deref() == Some("valid");
                        let worker = task.committed_by?.0;
                        Some((task.task_id.task_idx, accepted, worker, task.duration_ms.unwrap_or_default(), price))
                    })
                    .collect();
                Ok((price, committed))
            }
        }
    }
}

pub async fn ledger(global: &Global, args: LedgerArgs) -> anyhow::Result<ExitCode> {
    let LedgerCommand::Verify { data_dir } = args.command;
    let audited = match data_dir {
        Some(data_dir) => {
            if !data_dir.join("coordinator.db").is_file() {
                bail!(
                    "{} holds no coordinator store (coordinator.db); pass the coordinator's --data-dir",
                    data_dir.display()
                );
            }
            let store = iog_store::Store::open(&data_dir).await.context("open store")?;
            Audited::Store { store, data_dir }
        }
        None => {
            let own = own_address(&global.wallet_dir)?;
            Audited::Api(global.authed_client()?, own)
        }
    };
    // Checkpoints first: the journal only grows, so each one read is within it.
    let checkpoints = audited.checkpoints().await?;
    let rows = audited.journal().await?;
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
    let only_payer = match &audited {
        Audited::Api(_, own) => Some(AccountId::Wallet(*own)),
        Audited::Store { .. } => None,
    };
    let (n_ended, n_running, n_others) = check_task_payments(&audited, &ledger, only_payer).await?;
    let signed = check_checkpoints(&checkpoints, &entries, audited.signer().await?)?;
    if let Audited::Store { store, .. } = &audited {
        store.close().await;
    }
    let head = hex::encode(checkpoint.head_hash);
    if global.json {
        print_json(&serde_json::json!({
            "ok": true,
            "entries": entries.len(),
            "supply": ledger.supply().to_string(),
            "head_hash": head,
            "paid_jobs_checked": n_ended,
            "paid_jobs_running": n_running,
            "paid_jobs_of_others": n_others,
            "checkpoints": checkpoints.len(),
            "signed_entries": signed.as_ref().map_or(0, |(n, _)| *n),
            "signer": signed.as_ref().map(|(_, signer)| signer.clone()),
        }))?;
    } else {
        println!(
            "ledger ok: {} journal entries, chain intact (head {}), supply {}, balances conserved, none negative, \
             every committed task of {n_ended} ended paid jobs paid exactly once ({n_running} still running)",
            entries.len(),
            &head[..16],
            ledger.supply()
        );
        if n_others > 0 {
            println!(
                "{n_others} ended paid jobs of other wallets: their tasks are theirs to see, so only their \
                 totals were checked (the journal's); audit every job with --data-dir on the coordinator"
            );
        }
        match signed {
            Some((n_signed, signer)) => println!(
                "{} signed checkpoints by {signer}; the last vouches for {n_signed} of {} entries",
                checkpoints.len(),
                entries.len()
            ),
            None => println!("no signed checkpoint yet"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A committed task or replica: (task index, accepted by verification,
/// worker, duration, price per hour).
type CommittedRun = (u32, bool, String, u64, Amount);

/// Checks every ended paid job's payments against its committed tasks
/// (only those `only_payer` paid for, when given); returns how many paid
/// jobs were checked, how many are still running (a running job's commits
/// and journal can be read at different moments) and how many were left
/// out as another payer's.
async fn check_task_payments(
    audited: &Audited,
    ledger: &Ledger,
    only_payer: Option<AccountId>,
) -> anyhow::Result<(usize, usize, usize)> {
    let (mut n_ended, mut n_running, mut n_others) = (0, 0, 0);
    for (hold_id, hold) in ledger.holds() {
        let AccountId::Escrow(job) = hold.credit else { continue };
        if only_payer.as_ref().is_some_and(|payer| *payer != hold.debit) {
            n_others += 1;
            continue;
        }
        if hold.state == iog_ledger::PendingState::Open {
            n_running += 1;
            continue;
        }
        n_ended += 1;
        let (price, committed) = audited.paid_job(iog_types::JobId(job)).await?;
        let committed: Vec<_> = committed
            .iter()
            .map(|(task_idx, accepted, worker_id, duration_ms, price)| iog_ledger::billing::CommittedTask {
                task_idx: *task_idx,
                accepted: *accepted,
                worker_id,
                duration_ms: *duration_ms,
                price_io_per_hour: *price,
            })
            .collect();
        iog_ledger::billing::check_job_payments(ledger, job, *hold_id, price, &committed)
            .map_err(|broken| anyhow::anyhow!("payment rule broken: {broken}"))?;
    }
    Ok((n_ended, n_running, n_others))
}

/// Checks every signed checkpoint: one signer throughout (the coordinator's
/// own key when its data dir holds it), a valid signature, and a head hash
/// that is the journal's at that length. Returns the entries the last one
/// vouches for and the signer, or `None` when there is no checkpoint.
fn check_checkpoints(
    checkpoints: &[iog_store::SignedCheckpoint],
    entries: &[Entry],
    own_key: Option<[u8; 32]>,
) -> anyhow::Result<Option<(u64, String)>> {
    let mut signer: Option<[u8; 32]> = own_key;
    let mut last = None;
    for checkpoint in checkpoints {
        let n = checkpoint.n_entries;
        let bad = |why: String| anyhow::anyhow!("checkpoint at {n} entries: {why}");
        let key: [u8; 32] =
            checkpoint.signer.as_slice().try_into().map_err(|_| bad("signer is not 32 bytes".into()))?;
        let signature: [u8; 64] =
            checkpoint.signature.as_slice().try_into().map_err(|_| bad("signature is not 64 bytes".into()))?;
        let head_hash: [u8; 32] =
            checkpoint.head_hash.as_slice().try_into().map_err(|_| bad("head hash is not 32 bytes".into()))?;
        if *signer.get_or_insert(key) != key {
            return Err(bad(format!(
                "signed by {}, not by the coordinator's key {}",
                bs58::encode(key).into_string(),
                bs58::encode(signer.expect("set above")).into_string()
            )));
        }
        let expected = match n {
            0 => iog_ledger::GENESIS_HASH,
            n => entries.get(n as usize - 1).map(|entry| entry.hash).ok_or_else(|| {
                bad(format!("the journal has only {} entries: entries it vouched for are gone", entries.len()))
            })?,
        };
        if head_hash != expected {
            return Err(bad("its head hash is not the journal's at that length: the history was rewritten".into()));
        }
        let message = iog_ledger::Checkpoint { n_entries: n, head_hash }.signing_message();
        iog_host::verify_key(&key, &message, &signature).map_err(|err| bad(err.to_string()))?;
        last = Some((n, bs58::encode(key).into_string()));
    }
    Ok(last)
}
