//! Wallets, the development faucet and the audit of the ledger journal,
//! against a real coordinator process and its SQLite store.

mod common;

use common::Cluster;
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

    // One changed byte in a journal row is found and named.
    cluster.coordinator.as_mut().unwrap().kill9();
    let db = data_dir.join("coordinator.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display())).await.unwrap();
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
