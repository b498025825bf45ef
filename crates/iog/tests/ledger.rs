//! Wallets, the development faucet and the audit of the ledger journal,
//! against a real coordinator process and its SQLite store.

mod common;

use std::time::Duration;

use common::Cluster;
use iog_ledger::Amount;
use iog_proto::api::WalletStatus;

fn run_ok(cluster: &Cluster, args: &[&str]) -> String {
    let out = cluster.cli(args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_network_has_no_faucet() {
    let cluster = Cluster::start(0).await;
    let wallet_dir = cluster.dir.path().join("wallet");
    let out = cluster.cli(&["wallet", "faucet", "5", "--wallet-dir", wallet_dir.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("this network has no faucet") && err.contains("faucet_disabled"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faucet_grants_survive_a_crash_and_the_journal_is_audited() {
    let mut cluster = Cluster::start_with(0, &["--faucet-max-io", "100"]).await;
    let dir = cluster.dir.path().join("wallet");
    let wallet = ["--wallet-dir", dir.to_str().unwrap()];
    let address = run_ok(&cluster, &[&["wallet", "new"][..], &wallet].concat()).trim().to_owned();
    assert_eq!(run_ok(&cluster, &[&["wallet", "new"][..], &wallet].concat()).trim(), address, "the key is kept");
    run_ok(&cluster, &[&["wallet", "faucet", "5"][..], &wallet].concat());
    run_ok(&cluster, &[&["wallet", "faucet", "2.5"][..], &wallet].concat());
    let too_much = cluster.cli(&[&["wallet", "faucet", "500"][..], &wallet].concat());
    assert!(String::from_utf8_lossy(&too_much.stderr).contains("at most 100 IO per request, asked for 500 IO"));

    // Acknowledged grants survive kill -9: the journal is replayed on start.
    cluster.coordinator.as_mut().unwrap().kill9();
    cluster.start_coordinator().await;
    let status: WalletStatus =
        serde_json::from_str(&run_ok(&cluster, &[&["wallet", "balance", "--json"][..], &wallet].concat())).unwrap();
    assert_eq!((status.address.as_str(), status.available.as_str()), (address.as_str(), "7.5 IO"));

    let data_dir = cluster.coordinator_dir();
    let verify = ["ledger", "verify", "--data-dir", data_dir.to_str().unwrap()];
    let ok = run_ok(&cluster, &verify);
    assert!(ok.contains("ledger ok: 2 journal entries") && ok.contains("supply 7.5 IO"), "{ok}");
    let signer = cluster.client.health().await.unwrap().ledger_signer;
    assert!(ok.contains(&format!("signed checkpoints by {signer}")), "{ok}");

    // A checkpoint whose signature is not the coordinator's is named.
    cluster.coordinator.as_mut().unwrap().kill9();
    let db = data_dir.join("coordinator.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
    let (n_entries, mut signature): (i64, Vec<u8>) =
        sqlx::query_as("SELECT n_entries, signature FROM ledger_checkpoints ORDER BY n_entries LIMIT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
    signature[0] ^= 1;
    let set = "UPDATE ledger_checkpoints SET signature = ? WHERE n_entries = ?";
    sqlx::query(set).bind(&signature).bind(n_entries).execute(&pool).await.unwrap();
    let out = cluster.cli(&verify);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains(&format!("checkpoint at {n_entries} entries")), "{err}");
    signature[0] ^= 1;
    sqlx::query(set).bind(&signature).bind(n_entries).execute(&pool).await.unwrap();
    run_ok(&cluster, &verify);

    // One changed byte in a journal row is found and named.
    let (mut entry,): (Vec<u8>,) =
        sqlx::query_as("SELECT entry FROM ledger_journal WHERE seq = 1").fetch_one(&pool).await.unwrap();
    let last = entry.len() - 40;
    entry[last] ^= 1;
    sqlx::query("UPDATE ledger_journal SET entry = ? WHERE seq = 1").bind(&entry).execute(&pool).await.unwrap();
    pool.close().await;
    let out = cluster.cli(&verify);
    assert!(!out.status.success(), "verify accepted a tampered journal");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("journal row 1"), "{err}");
}

/// A paid render job: the worker holding a lease is killed mid-job. Every
/// committed task is paid once, to the worker that committed it; the rest
/// of the budget goes back; `iog ledger verify` agrees.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_job_pays_each_committed_task_once_when_a_worker_dies() {
    let mut cluster =
        Cluster::start_full(3, &["--faucet-max-io", "100", "--fee-bps", "1000"], &["--price", "36"]).await;
    let dir = cluster.dir.path().join("wallet");
    let wallet = ["--wallet-dir", dir.to_str().unwrap()];
    let address = run_ok(&cluster, &[&["wallet", "new"][..], &wallet].concat()).trim().to_owned();
    run_ok(&cluster, &[&["wallet", "faucet", "60"][..], &wallet].concat());

    let job_file = common::write_render_job(cluster.dir.path(), 160, 128, 16, 96);
    let mut text = std::fs::read_to_string(&job_file).unwrap();
    text.push_str("\n[payment]\nbudget = \"50\"\nprice_io_per_hour = \"36\"\n");
    std::fs::write(&job_file, text).unwrap();
    let out = cluster.cli(&[&["job", "submit", job_file.to_str().unwrap()][..], &wallet].concat());
    assert!(out.status.success(), "submit failed: {}", String::from_utf8_lossy(&out.stderr));
    let job_id: iog_types::JobId = String::from_utf8(out.stdout).unwrap().trim().parse().unwrap();
    let held: WalletStatus =
        serde_json::from_str(&run_ok(&cluster, &[&["wallet", "balance", "--json"][..], &wallet].concat())).unwrap();
    // The whole budget left the available balance at once; tiles may be paid from it already.
    assert_eq!(held.available, "10 IO", "the budget is held at once");
    let held_io = held.held.parse::<Amount>().unwrap();
    assert!(held_io > Amount::ZERO && held_io <= "50".parse().unwrap(), "{held:?}");

    let victim = cluster.workers[0].0.clone();
    cluster
        .wait_job(job_id, Duration::from_secs(120), |s| {
            s.tasks.committed >= 3 && s.workers.iter().any(|w| w.worker_id == victim && w.n_leased > 0)
        })
        .await;
    cluster.workers[0].1.kill9();
    let status = cluster.wait_job(job_id, Duration::from_secs(120), |s| s.is_settled()).await;
    assert_eq!(status.state, iog_types::JobState::Done, "{status:?}");

    // What each worker earned is 90 % of price × its committed run time.
    let tasks = cluster.client.tasks(job_id).await.unwrap();
    let bill = cluster.client.billing(job_id).await.unwrap();
    let io = |text: &str| text.parse::<Amount>().unwrap();
    let price = io("36");
    let mut spent = Amount::ZERO;
    let mut fees = Amount::ZERO;
    for worker in &bill.workers {
        let mut earned = Amount::ZERO;
        let mut billed_ms = 0;
        for task in tasks.iter().filter(|t| t.committed_by.as_ref().is_some_and(|w| w.0 == worker.worker_id)) {
            let duration_ms = task.duration_ms.unwrap();
            let charge = price.checked_mul_div(duration_ms.max(1), 3_600_000).unwrap();
            let (fee, share) = charge.split_bps(1_000).unwrap();
            earned = earned.checked_add(share).unwrap();
            fees = fees.checked_add(fee).unwrap();
            spent = spent.checked_add(charge).unwrap();
            billed_ms += duration_ms;
        }
        assert_eq!((io(&worker.earned), worker.billed_ms), (earned, billed_ms), "{bill:?}");
        let payout: iog_proto::api::AccountStatus =
            cluster.client.account(&format!("payout:{}", worker.worker_id)).await.unwrap();
        assert_eq!(io(&payout.available), earned, "the worker's payout account holds exactly its pay");
    }
    assert!(spent > Amount::ZERO);
    assert_eq!((io(&bill.spent), io(&bill.fees), io(&bill.held)), (spent, fees, Amount::ZERO), "{bill:?}");
    let refund = io("50").checked_sub(spent).unwrap();
    assert_eq!(io(&bill.refunded), refund);
    let after: WalletStatus = cluster.client.wallet(&address).await.unwrap();
    assert_eq!(io(&after.available), io("10").checked_add(refund).unwrap(), "the rest came back");
    assert_eq!(after.held, "0 IO");

    // The audit replays the journal and checks each commit's payment,
    // through the API of the running coordinator and from its store; a
    // restart rebuilds the same bill.
    let live = run_ok(&cluster, &["ledger", "verify"]);
    assert!(live.contains("every committed task of 1 ended paid jobs paid exactly once"), "{live}");
    assert!(live.contains("signed checkpoints by"), "{live}");
    // Anyone may audit the public journal; a job's tasks are its payer's.
    let auditor = cluster.dir.path().join("auditor");
    let outside = run_ok(&cluster, &["ledger", "verify", "--wallet-dir", auditor.to_str().unwrap()]);
    assert!(outside.contains("every committed task of 0 ended paid jobs"), "{outside}");
    assert!(outside.contains("1 ended paid jobs of other wallets"), "{outside}");
    cluster.coordinator.as_mut().unwrap().kill9();
    let data_dir = cluster.coordinator_dir();
    let ok = run_ok(&cluster, &["ledger", "verify", "--data-dir", data_dir.to_str().unwrap()]);
    assert!(ok.contains("every committed task of 1 ended paid jobs paid exactly once (0 still running)"), "{ok}");
    cluster.start_coordinator().await;
    assert_eq!(cluster.client.billing(job_id).await.unwrap(), bill, "the bill is rebuilt from the journal");

    // The worker sees its earnings and moves them to its own wallet; the
    // payer sees its history.
    let worker_dir = cluster.dir.path().join("worker-1");
    let earnings = run_ok(&cluster, &["worker", "earnings", "--data-dir", worker_dir.to_str().unwrap()]);
    assert!(earnings.contains("earned and not withdrawn"), "{earnings}");
    let worker_id = cluster.workers[1].0.clone();
    let earned = cluster.client.account(&format!("payout:{worker_id}")).await.unwrap().available;
    if io(&earned) > Amount::ZERO {
        let amount = earned.trim_end_matches(" IO");
        let out = run_ok(&cluster, &["worker", "withdraw", amount, "--data-dir", worker_dir.to_str().unwrap()]);
        assert!(out.contains(&format!("has {earned} available")), "{out}");
        let left = cluster.client.account(&format!("payout:{worker_id}")).await.unwrap();
        assert_eq!(left.available, "0 IO");
    }
    let history = run_ok(&cluster, &[&["wallet", "history", "--limit", "1000"][..], &wallet].concat());
    assert!(history.contains("hold 50 IO") && history.contains("void") && history.contains("mint 60 IO"), "{history}");
}

/// Paying needs funds and the wallet's own signature; refusals create no job.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payment_needs_funds_and_the_wallets_signature() {
    let cluster = Cluster::start_with(0, &["--faucet-max-io", "100"]).await;
    let dir = cluster.dir.path().join("wallet");
    let wallet = ["--wallet-dir", dir.to_str().unwrap()];
    let address = run_ok(&cluster, &[&["wallet", "new"][..], &wallet].concat()).trim().to_owned();
    run_ok(&cluster, &[&["wallet", "faucet", "1"][..], &wallet].concat());
    let job_file = cluster.dir.path().join("paid.toml");
    let job = |budget: &str| {
        format!(
            "[job]\nname = \"paid\"\nworkload = \"noop\"\n\n[noop]\nn_tasks = 4\n\n[payment]\nbudget = \"{budget}\"\n\
             price_io_per_hour = \"1\"\n"
        )
    };

    std::fs::write(&job_file, job("5")).unwrap();
    let out = cluster.cli(&[&["job", "submit", job_file.to_str().unwrap()][..], &wallet].concat());
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("insufficient funds") && err.contains("1 IO available, 5 IO needed"), "{err}");

    std::fs::write(&job_file, job("ten")).unwrap();
    let out = cluster.cli(&[&["job", "submit", job_file.to_str().unwrap()][..], &wallet].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("payment.budget must be an amount"), "{err}");

    // Straight to the API: no signature, then a signature by another key.
    let spec = serde_json::json!({
        "job": { "name": "paid", "workload": "noop" },
        "noop": { "n_tasks": 4 },
        "payment": { "wallet": address, "budget": "0.5", "price_io_per_hour": "1" },
    });
    let unsigned = cluster.client.submit(spec.clone()).await.unwrap_err().to_string();
    assert!(unsigned.contains("unsigned_payment"), "{unsigned}");
    let stranger = iog_host::Identity::generate();
    let request_id = format!("t-{:032x}", 7u128);
    let message = iog_proto::api::submit_signing_message(&request_id, &serde_json::to_vec(&spec).unwrap());
    let forged = iog_proto::api::PaymentAuthorization { request_id, signature: hex::encode(stranger.sign(&message)) };
    let refused = cluster.client.submit_authorized(spec, Some(forged)).await.unwrap_err().to_string();
    assert!(refused.contains("bad_signature"), "{refused}");

    assert!(cluster.client.jobs(10).await.unwrap().is_empty(), "no refused submission created a job");
    let status: WalletStatus = cluster.client.wallet(&address).await.unwrap();
    assert_eq!((status.available.as_str(), status.held.as_str()), ("1 IO", "0 IO"), "nothing was held");
}

/// `iog wallet send` moves $IO with the sender's signature, once per request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wallets_send_to_each_other() {
    let cluster = Cluster::start_with(0, &["--faucet-max-io", "100"]).await;
    let (dir_a, dir_b) = (cluster.dir.path().join("a"), cluster.dir.path().join("b"));
    let a = ["--wallet-dir", dir_a.to_str().unwrap()];
    let b = ["--wallet-dir", dir_b.to_str().unwrap()];
    run_ok(&cluster, &[&["wallet", "new"][..], &a].concat());
    let address_b = run_ok(&cluster, &[&["wallet", "new"][..], &b].concat()).trim().to_owned();
    run_ok(&cluster, &[&["wallet", "faucet", "3"][..], &a].concat());
    let sent = run_ok(&cluster, &[&["wallet", "send", &address_b, "1.25"][..], &a].concat());
    assert!(sent.contains("sent 1.25 IO") && sent.contains("1.75 IO available"), "{sent}");
    let out = cluster.cli(&[&["wallet", "send", &address_b, "2"][..], &a].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("insufficient funds"), "{err}");
    let status: WalletStatus = cluster.client.wallet(&address_b).await.unwrap();
    assert_eq!(status.available, "1.25 IO");
    let history = run_ok(&cluster, &[&["wallet", "history"][..], &b].concat());
    assert!(history.contains("transfer 1.25 IO"), "{history}");
}

/// A paid job that fails when its only worker dies ends on the
/// coordinator's tick; the refund made there is as durable as any other
/// operation: after a kill -9 the coordinator starts, the refund is there,
/// and the audit passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refund_made_when_a_job_fails_on_a_tick_survives_a_crash() {
    let mut cluster = Cluster::start_full(1, &["--faucet-max-io", "100"], &["--price", "36"]).await;
    let dir = cluster.dir.path().join("wallet");
    let wallet = ["--wallet-dir", dir.to_str().unwrap()];
    let address = run_ok(&cluster, &[&["wallet", "new"][..], &wallet].concat()).trim().to_owned();
    run_ok(&cluster, &[&["wallet", "faucet", "10"][..], &wallet].concat());
    let scene = common::examples_dir().join("scenes/cornell.toml");
    let job_file = cluster.dir.path().join("one-attempt.toml");
    let text = format!(
        "[job]\nname = \"one-attempt\"\nworkload = \"render\"\nmax_attempts = 1\n\n[render]\nscene = {:?}\n\
         width = 160\nheight = 128\ntile_size = 16\nsamples_per_pixel = 256\nseed = 3\n\n[payment]\nbudget = \"4\"\n\
         price_io_per_hour = \"36\"\n",
        scene.to_str().unwrap()
    );
    std::fs::write(&job_file, text).unwrap();
    let out = cluster.cli(&[&["job", "submit", job_file.to_str().unwrap()][..], &wallet].concat());
    assert!(out.status.success(), "submit failed: {}", String::from_utf8_lossy(&out.stderr));
    let job_id: iog_types::JobId = String::from_utf8(out.stdout).unwrap().trim().parse().unwrap();
    cluster.wait_job(job_id, Duration::from_secs(60), |s| s.tasks.leased > 0).await;
    cluster.workers[0].1.kill9();
    // The dead worker's lease lapses on a tick; with one attempt the job fails there.
    let status = cluster.wait_job(job_id, Duration::from_secs(60), |s| s.state.is_final()).await;
    assert_eq!(status.state, iog_types::JobState::Failed, "{status:?}");
    let bill = cluster.client.billing(job_id).await.unwrap();
    let io = |text: &str| text.parse::<Amount>().unwrap();
    assert_eq!(io(&bill.refunded).checked_add(io(&bill.spent)).unwrap(), io("4"), "{bill:?}");

    cluster.coordinator.as_mut().unwrap().kill9();
    cluster.start_coordinator().await;
    assert_eq!(cluster.client.billing(job_id).await.unwrap(), bill, "the refund survived");
    let status: WalletStatus = cluster.client.wallet(&address).await.unwrap();
    assert_eq!(status.held, "0 IO");
    cluster.coordinator.as_mut().unwrap().kill9();
    let data_dir = cluster.coordinator_dir();
    run_ok(&cluster, &["ledger", "verify", "--data-dir", data_dir.to_str().unwrap()]);
}

/// A network that asks for stake refuses an unstaked worker with the fix in
/// the message, admits it once it staked from its own wallet, and returns
/// unstaked $IO to that wallet after the cooldown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_are_admitted_by_stake_and_unstake_after_the_cooldown() {
    let flags = ["--faucet-max-io", "100", "--stake-min-io-per-device", "2", "--unstake-cooldown-ms", "300"];
    let mut cluster = Cluster::start_with(0, &flags).await;
    cluster.start_worker(0);
    let worker_id = cluster.workers[0].0.clone();
    let worker_dir = cluster.dir.path().join("worker-0");
    let data_dir = ["--data-dir", worker_dir.to_str().unwrap()];
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !cluster.workers[0].1.log_text().contains("stake_too_low") {
        assert!(std::time::Instant::now() < deadline, "the worker was not refused:\n{}", cluster.logs());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refusal = cluster.workers[0].1.log_text();
    assert!(refusal.contains("has 0 IO staked") && refusal.contains("iog worker stake"), "{refusal}");
    let online = cluster.client.workers().await.unwrap();
    assert!(online.iter().all(|w| !w.online), "an unstaked worker is not online: {online:?}");

    // The worker's key is a wallet key too: fund it, then stake from it.
    run_ok(&cluster, &["wallet", "faucet", "5", "--wallet-dir", worker_dir.to_str().unwrap()]);
    let out = cluster.cli(&[&["worker", "stake", "9"][..], &data_dir].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("insufficient funds"), "{err}");
    let staked = run_ok(&cluster, &[&["worker", "stake", "2.5"][..], &data_dir].concat());
    assert!(staked.contains("2.5 IO staked"), "{staked}");
    cluster.wait_for_online(1).await;

    let unstaking = run_ok(&cluster, &[&["worker", "unstake", "1.5"][..], &data_dir].concat());
    assert!(unstaking.contains("1 IO staked (1.5 IO unstaking)"), "{unstaking}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let wallet: WalletStatus = cluster.client.wallet(&worker_id.0).await.unwrap();
        if wallet.available == "4 IO" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the unstaked IO never arrived: {wallet:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stake = cluster.client.stake_status(&worker_id.0).await.unwrap();
    assert_eq!((stake.active.as_str(), stake.unstaking.as_str()), ("1 IO", "0 IO"));
    cluster.coordinator.as_mut().unwrap().kill9();
    let data_dir = cluster.coordinator_dir();
    run_ok(&cluster, &["ledger", "verify", "--data-dir", data_dir.to_str().unwrap()]);
}

/// With a rewards schedule, every epoch mints its amount by the rule in the
/// journal and shares it among the workers online, into their payouts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewards_are_minted_by_the_schedule_and_shared_among_online_workers() {
    let flags = ["--rewards-io-per-epoch", "2", "--rewards-epoch-ms", "300"];
    let mut cluster = Cluster::start_with(2, &flags).await;
    let payout = |idx: usize| format!("payout:{}", cluster.workers[idx].0);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let io = |text: &str| text.parse::<Amount>().unwrap();
    loop {
        let a = io(&cluster.client.account(&payout(0)).await.unwrap().available);
        let b = io(&cluster.client.account(&payout(1)).await.unwrap().available);
        if a >= io("2") && b >= io("2") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "rewards did not arrive: {a} and {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let history = run_ok(&cluster, &["wallet", "history", "--address", &cluster.workers[0].0.0]);
    assert!(history.contains("no ledger operations"), "rewards go to the payout account, not the wallet: {history}");
    let minted = cluster.client.history("rewards", 1000).await.unwrap();
    assert!(
        minted
            .iter()
            .any(|e| e.kind == "mint" && e.description.contains("the schedule mints 2 IO per epoch of 300 ms")),
        "{minted:?}"
    );
    cluster.coordinator.as_mut().unwrap().kill9();
    let data_dir = cluster.coordinator_dir();
    run_ok(&cluster, &["ledger", "verify", "--data-dir", data_dir.to_str().unwrap()]);
}
