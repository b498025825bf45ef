//! Authentication and authorization on a live coordinator: nobody is taken
//! at their word, and nobody reads, cancels, downloads or lists another's
//! objects; another's job or blob is answered exactly like a missing one.

mod common;

use std::time::Duration;

use common::Cluster;
use iog_client::{BoundConnection, Client};
use iog_host::Identity;
use iog_proto::api::ApiError;
use iog_proto::auth::{AuthNonce, AuthToken, TokenRequest};
use iog_types::{BlobId, JobId, JobState};

/// The stable error code of a failed SDK call.
fn code<T: std::fmt::Debug>(result: Result<T, iog_client::ClientError>) -> String {
    result.expect_err("the request must be refused").code().expect("an API error").to_owned()
}

/// A raw request's status and error code.
async fn raw(request: reqwest::RequestBuilder) -> (u16, String) {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    let error: ApiError = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not an API error: {body}"));
    (status, error.code)
}

/// A token request signed by `identity` for the TLS channel of `bound`.
fn token_request(bound: &BoundConnection, identity: &Identity, address: &str, nonce: &AuthNonce) -> TokenRequest {
    let message = iog_proto::auth::token_signing_message(&nonce.nonce, address, &nonce.audience, bound.channel());
    TokenRequest {
        address: address.to_owned(),
        nonce: nonce.nonce.clone(),
        signature: hex::encode(identity.sign(&message)),
    }
}

/// Asks for a nonce over `bound`.
async fn nonce(bound: &mut BoundConnection) -> AuthNonce {
    bound.post_json("/v1/auth/nonce", &serde_json::json!({})).await.unwrap()
}

/// Posts a token request over `bound`: the token, or the refusal's status and code.
async fn ask_token(bound: &mut BoundConnection, request: &TokenRequest) -> Result<AuthToken, (u16, String)> {
    bound.post_json("/v1/auth/token", request).await.map_err(|err| match err {
        iog_client::ClientError::Api { status, code, .. } => (status, code),
        other => panic!("not an API error: {other}"),
    })
}

fn hash_job(name: &str) -> serde_json::Value {
    serde_json::json!({
        "job": { "name": name, "workload": "hash" },
        "hash": { "algorithm": "blake3", "data": name, "nonce_start": 0, "nonce_count": 40000,
                  "nonces_per_task": 20000, "difficulty_bits": 8 },
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_see_only_their_own_jobs_results_and_blobs() {
    let cluster = Cluster::start(1).await;
    let alice = &cluster.client;
    let bob = cluster.client_for(&cluster.dir.path().join("bob"));
    let job_id = alice.submit(hash_job("alice's")).await.unwrap().job_id;
    let status = cluster.wait_job(job_id, Duration::from_secs(60), |s| s.is_settled()).await;
    assert_eq!(status.state, JobState::Done, "{status:?}");
    let artifact = status.artifacts[0].blob;
    let tasks = alice.tasks(job_id).await.unwrap();
    let output = tasks[0].output.unwrap();
    assert_eq!(alice.get_blob(artifact).await.unwrap().len() as u64, status.artifacts[0].size_bytes);
    alice.get_blob(output).await.unwrap();

    // Bob gets exactly what a job that does not exist gets.
    let missing = JobId(0x0123_4567_89ab_cdef);
    for id in [job_id, missing] {
        assert_eq!(code(bob.job(id).await), "job_not_found");
        assert_eq!(code(bob.tasks(id).await), "job_not_found");
        assert_eq!(code(bob.cancel(id).await), "job_not_found");
        assert_eq!(code(bob.billing(id).await), "job_not_found");
    }
    assert!(bob.jobs(100).await.unwrap().is_empty(), "bob lists none of alice's jobs");
    assert_eq!(alice.jobs(100).await.unwrap().len(), 1);
    for blob in [artifact, output, BlobId::of(b"never stored")] {
        assert_eq!(code(bob.get_blob(blob).await), "blob_not_found");
    }
    // A worker reads only the inputs of the tasks it holds now.
    let worker_dir = cluster.dir.path().join("worker-0");
    let worker = cluster.client_for(&worker_dir);
    assert_eq!(code(worker.get_blob(artifact).await), "blob_not_found");
    // ...and the outputs it committed itself.
    assert!(worker.get_blob(output).await.is_ok(), "a worker may read back its own committed output");

    // A running job of alice's cannot be cancelled by bob either.
    let mut slow = hash_job("slow");
    slow["hash"]["nonce_count"] = 4_000_000_000u64.into();
    slow["hash"]["nonces_per_task"] = 2_000_000_000u64.into();
    slow["hash"]["difficulty_bits"] = 64.into();
    let running = alice.submit(slow).await.unwrap().job_id;
    assert_eq!(code(bob.cancel(running).await), "job_not_found");
    assert_eq!(alice.job(running).await.unwrap().state, JobState::Running);
    assert_eq!(alice.cancel(running).await.unwrap().state, JobState::Cancelled);

    // The faucet pays only the caller's own wallet.
    let alice_address = alice.address().unwrap();
    let request_id = format!("t-{:032x}", rand::random::<u128>());
    let refused = bob.faucet(&alice_address, "1", &request_id).await;
    assert_eq!(code(refused), "not_owner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_forged_replayed_and_expired_requests_are_refused() {
    let cluster = Cluster::start_with(0, &["--token-ttl-s", "1"]).await;
    let url = cluster.url();
    // A raw HTTP client that trusts the coordinator's certificate.
    let tls = (*cluster.client.tls_config().unwrap()).clone();
    let http = reqwest::Client::builder().use_preconfigured_tls(tls).build().unwrap();
    let job_id = cluster.client.submit(hash_job("mine")).await.unwrap().job_id;

    // No token, a malformed header, a token never issued.
    let path = format!("{url}/v1/jobs/{job_id}");
    assert_eq!(raw(http.get(&path)).await, (401, "unauthenticated".into()));
    assert_eq!(raw(http.get(&path).header("authorization", "Basic eA==")).await, (401, "bad_token".into()));
    assert_eq!(raw(http.get(&path).bearer_auth("00".repeat(32))).await, (401, "bad_token".into()));
    assert_eq!(raw(http.post(format!("{url}/v1/jobs")).json(&hash_job("x"))).await, (401, "unauthenticated".into()));
    assert_eq!(raw(http.put(format!("{url}/v1/blobs/{}", BlobId::of(b"x"))).body("x")).await.0, 401);

    // Mallory signs alice's address with its own key.
    let alice = Identity::load_or_create(&cluster.wallet_dir()).unwrap();
    let alice_address = alice.worker_id().0;
    let mallory = Identity::generate();
    let mut bound = BoundConnection::open(&cluster.client).await.unwrap();
    let issued = nonce(&mut bound).await;
    let forged = token_request(&bound, &mallory, &alice_address, &issued);
    assert_eq!(ask_token(&mut bound, &forged).await.unwrap_err(), (401, "bad_signature".into()));
    // The forged attempt spent that nonce; a nonce never issued is refused.
    let replay = token_request(&bound, &alice, &alice_address, &issued);
    assert_eq!(ask_token(&mut bound, &replay).await.unwrap_err(), (401, "bad_nonce".into()));
    let invented = AuthNonce { nonce: "ab".repeat(32), ..issued.clone() };
    let request = token_request(&bound, &alice, &alice_address, &invented);
    assert_eq!(ask_token(&mut bound, &request).await.unwrap_err(), (401, "bad_nonce".into()));

    // Alice's own signature gets a token, once per nonce.
    let issued = nonce(&mut bound).await;
    let good = token_request(&bound, &alice, &alice_address, &issued);
    let token = ask_token(&mut bound, &good).await.unwrap();
    assert_eq!(token.address, alice_address);
    assert_eq!(ask_token(&mut bound, &good).await.unwrap_err(), (401, "bad_nonce".into()));
    let response = http.get(&path).bearer_auth(&token.token).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "alice reads her job with her token");
    // A signature meant for another coordinator does not verify here.
    let issued = nonce(&mut bound).await;
    let message = iog_proto::auth::token_signing_message(&issued.nonce, &alice_address, "elsewhere", bound.channel());
    let elsewhere = TokenRequest {
        signature: hex::encode(alice.sign(&message)),
        ..token_request(&bound, &alice, &alice_address, &issued)
    };
    assert_eq!(ask_token(&mut bound, &elsewhere).await.unwrap_err(), (401, "bad_signature".into()));
    // A signature made on one connection does not get a token on another,
    // even with a nonce the other connection asked for: the man in the
    // middle's position, holding two connections.
    let mut other = BoundConnection::open(&cluster.client).await.unwrap();
    assert_ne!(other.channel(), bound.channel(), "every connection has its own channel");
    let issued = nonce(&mut other).await;
    let relayed = token_request(&bound, &alice, &alice_address, &issued);
    assert_eq!(ask_token(&mut other, &relayed).await.unwrap_err(), (401, "bad_signature".into()));

    // The token lapses after its one second; the SDK renews its own.
    tokio::time::sleep(Duration::from_millis(1_300)).await;
    assert_eq!(raw(http.get(&path).bearer_auth(&token.token)).await, (401, "token_expired".into()));
    assert_eq!(cluster.client.job(job_id).await.unwrap().job_id, job_id);
    // A client without a key cannot ask at all.
    let anonymous = Client::new(&url).unwrap();
    assert!(matches!(anonymous.job(job_id).await, Err(iog_client::ClientError::NoIdentity)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_job_belongs_to_its_payer_and_the_cli_acts_for_its_wallet() {
    let cluster = Cluster::start_with(0, &["--faucet-max-io", "100"]).await;
    // The CLI's wallet is the cluster client's: what one submits, the other reads.
    let job_file = common::examples_dir().join("hash-sha256d.toml");
    let out = cluster.cli(&["job", "submit", job_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let job_id: JobId = String::from_utf8(out.stdout).unwrap().trim().parse().unwrap();
    assert_eq!(cluster.client.job(job_id).await.unwrap().job_id, job_id);
    // Another wallet's CLI sees no such job.
    let other = cluster.dir.path().join("other");
    let out = cluster.cli(&["job", "status", &job_id.to_string(), "--wallet-dir", other.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("job_not_found"), "{}", String::from_utf8_lossy(&out.stderr));

    // A payer's signed submission sent by someone else is refused.
    let payer = Identity::load_or_create(&cluster.wallet_dir()).unwrap();
    let mut spec = hash_job("paid");
    spec["payment"] = serde_json::json!({ "wallet": payer.worker_id().0, "budget": "1", "price_io_per_hour": "1" });
    let request_id = format!("t-{:032x}", rand::random::<u128>());
    let message = iog_proto::api::submit_signing_message(&request_id, spec.to_string().as_bytes());
    let authorization =
        iog_proto::api::PaymentAuthorization { request_id, signature: hex::encode(payer.sign(&message)) };
    let thief = cluster.client_for(&other);
    let refused = thief.submit_authorized(spec, Some(authorization)).await;
    assert_eq!(code(refused), "payer_not_caller");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_from_one_address_are_limited() {
    let flags = ["--rate-limit-per-s", "20", "--rate-limit-burst", "20", "--worker-sessions-per-address-max", "2"];
    let mut cluster = Cluster::start_with(0, &flags).await;
    let tls = (*cluster.client.tls_config().unwrap()).clone();
    let http = reqwest::Client::builder().use_preconfigured_tls(tls).build().unwrap();
    let url = format!("{}/v1/health", cluster.url());
    let mut refused = None;
    for n in 0..100 {
        let response = http.get(&url).send().await.unwrap();
        if response.status().as_u16() == 429 {
            let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
            let error: ApiError = response.json().await.unwrap();
            refused = Some((n, retry_after, error));
            break;
        }
    }
    let (n, retry_after, error) = refused.expect("a hundred requests at once are limited");
    assert!(n >= 15, "the burst passes first: refused after {n}");
    assert_eq!(error.code, "rate_limited");
    assert!(error.message.contains("at most 20 a second"), "{}", error.message);
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().unwrap() >= 1), "a 429 says when to come back");

    // Two worker sessions from this address at most: the third worker is
    // refused and says why.
    for idx in 0..3 {
        cluster.start_worker(idx);
    }
    cluster.wait_for_online(2).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let logs = cluster.logs();
        if logs.contains("too_many_sessions") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no worker was refused:\n{logs}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The workers' own requests count against the same address's limit:
    // wait out a refusal.
    let workers = loop {
        match cluster.client.workers().await {
            Err(err) if err.code() == Some("rate_limited") => tokio::time::sleep(Duration::from_millis(200)).await,
            other => break other.unwrap(),
        }
    };
    assert_eq!(workers.iter().filter(|w| w.online).count(), 2, "the cap holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_hold_every_handshake() {
    use tokio::io::AsyncReadExt;
    let cluster = Cluster::start(0).await;
    let addr = format!("127.0.0.1:{}", cluster.port);
    // Silent connections that never start their TLS handshake: the first
    // 32 wait (for 10 s at most); the next is closed at once.
    let mut silent = Vec::new();
    for _ in 0..32 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(5), extra.read(&mut byte)).await;
    assert!(matches!(read, Ok(Ok(0)) | Ok(Err(_))), "the 33rd handshake from one address is closed: {read:?}");
    // Once they close, the address is served again.
    drop(silent);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while cluster.client.health().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "the address was not served again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Opens a TLS connection to `cluster` the way its own client would.
async fn tls_connection(cluster: &Cluster) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let authority = cluster.url().trim_start_matches("https://").to_owned();
    let tcp = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(cluster.client.tls_config().unwrap());
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    connector.connect(name, tcp).await.unwrap()
}

/// How long the coordinator takes to close `stream` while the test sends
/// nothing more (whatever it answered before closing is read and dropped).
async fn closed_after(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> Duration {
    use tokio::io::AsyncReadExt;
    let started = std::time::Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(20), stream.read(&mut buf)).await {
            Ok(Ok(0) | Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the connection was still open after 20 s"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_slow_and_stalled_connections_are_closed_and_busy_ones_are_not() {
    use tokio::io::AsyncWriteExt;
    let cluster =
        Cluster::start_with(1, &["--header-read-timeout-s", "1", "--idle-timeout-s", "1", "--missed-heartbeats", "10"])
            .await;
    cluster.wait_for_online(1).await;
    // A peer that finishes its TLS handshake and says nothing.
    let mut silent = tls_connection(&cluster).await;
    let waited = closed_after(&mut silent).await;
    assert!(waited >= Duration::from_millis(800) && waited < Duration::from_secs(10), "silent: {waited:?}");
    // One that starts a request's headers and never ends them.
    let mut slow = tls_connection(&cluster).await;
    slow.write_all(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\n").await.unwrap();
    let waited = closed_after(&mut slow).await;
    assert!(waited < Duration::from_secs(10), "slow headers: {waited:?}");
    // One that promises a body and stops sending it halfway.
    let mut stalled = tls_connection(&cluster).await;
    let blob = BlobId::of(&[7u8; 1000]);
    let token = cluster.client.bearer_token().await.unwrap().token;
    let head = format!(
        "PUT /v1/blobs/{blob} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 1000\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&[7u8; 100]).await.unwrap();
    stalled.flush().await.unwrap();
    let waited = closed_after(&mut stalled).await;
    assert!(waited < Duration::from_secs(10), "stalled body: {waited:?}");
    // A worker session heartbeats far more often than the deadline, and a
    // client that keeps asking is served all along.
    for _ in 0..6 {
        assert_eq!(cluster.client.health().await.unwrap().status, "ok");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    let workers = cluster.client.workers().await.unwrap();
    assert!(workers.iter().all(|w| w.online), "the worker's session outlived the deadlines: {workers:?}");
    let log = cluster.workers[0].1.log_text();
    assert_eq!(log.lines().filter(|line| line.contains(" connected")).count(), 1, "one session all along: {log}");
}
