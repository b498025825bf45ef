//! A man in the middle with a certificate of its own: it terminates TLS
//! from clients and workers and opens its own connection to the real
//! coordinator, relaying every byte. A pinned client or worker refuses it
//! at the handshake; one tricked into pinning the attacker's certificate
//! gets through TLS, but what it signs names its own TLS connection (the
//! one to the attacker), so the real coordinator refuses it.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Cluster;
use iog_client::{Client, Fingerprint};
use tokio::net::{TcpListener, TcpStream};

/// Starts the attacker's relay on a free port of its own; returns its URL
/// and the fingerprint of its certificate.
async fn start_relay(cluster: &Cluster) -> (String, Fingerprint) {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let fingerprint = Fingerprint::of(made.cert.der());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(made.key_pair.serialize_der().into());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    // Upstream, the attacker is an ordinary client of the real coordinator.
    let connector = tokio_rustls::TlsConnector::from(cluster.client.tls_config().unwrap());
    let upstream = format!("127.0.0.1:{}", cluster.port);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, connector, upstream) = (acceptor.clone(), connector.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut victim) = acceptor.accept(tcp).await else { return };
                let tcp = TcpStream::connect(&upstream).await.unwrap();
                let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                let mut coordinator = connector.connect(name, tcp).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut victim, &mut coordinator).await;
            });
        }
    });
    (url, fingerprint)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_man_in_the_middle_is_refused_by_pinned_clients_and_by_the_coordinator() {
    let mut cluster = Cluster::start(0).await;
    let (relay_url, relay_pin) = start_relay(&cluster).await;
    assert_ne!(relay_pin, cluster.pin);
    let wallet = iog_host::Identity::load_or_create(&cluster.wallet_dir()).unwrap();

    // Pinned to the real coordinator: refused at the handshake.
    let pinned = Client::connect(&relay_url, Some(cluster.pin)).unwrap().with_identity(wallet.clone());
    let err = pinned.health().await.unwrap_err().to_string();
    assert!(err.contains("cannot reach the coordinator"), "{err}");
    assert!(pinned.jobs(10).await.is_err());
    // Without any pin, the attacker's self-signed certificate has no
    // authority behind it.
    assert!(Client::new(&relay_url).unwrap().health().await.is_err());

    // Tricked into pinning the attacker: TLS works and public reads pass
    // through, but the wallet's signature names the TLS connection to the
    // attacker, not the attacker's own to the coordinator.
    let fooled = Client::connect(&relay_url, Some(relay_pin)).unwrap().with_identity(wallet.clone());
    assert_eq!(fooled.health().await.unwrap().status, "ok");
    let refused = fooled.jobs(10).await.unwrap_err();
    assert_eq!(refused.code(), Some("bad_signature"), "{refused}");
    // The same wallet through the real channel is fine.
    assert!(cluster.client.jobs(10).await.unwrap().is_empty());

    // A worker pinned to the real coordinator never talks to the relay; a
    // worker fooled into pinning the relay is refused by the coordinator.
    let args = |dir: &str, pin: &Fingerprint| {
        let dir = cluster.dir.path().join(dir).to_str().unwrap().to_owned();
        vec![
            "worker".to_owned(),
            "--coordinator".into(),
            relay_url.clone(),
            "--pin".into(),
            pin.to_string(),
            "--data-dir".into(),
            dir,
            "--memory-gib".into(),
            common::WORKER_MEMORY_GIB.into(),
        ]
    };
    let pinned_log = cluster.dir.path().join("pinned-worker.log");
    let fooled_log = cluster.dir.path().join("fooled-worker.log");
    let (pinned_args, fooled_args) = (args("pinned", &cluster.pin), args("fooled", &relay_pin));
    let _pinned = common::Proc::spawn(&as_refs(&pinned_args), pinned_log.clone());
    let _fooled = common::Proc::spawn(&as_refs(&fooled_args), fooled_log.clone());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let pinned_text = std::fs::read_to_string(&pinned_log).unwrap_or_default();
        let fooled_text = std::fs::read_to_string(&fooled_log).unwrap_or_default();
        if pinned_text.contains("not the pinned") && fooled_text.contains("bad_signature") {
            break;
        }
        assert!(Instant::now() < deadline, "pinned worker:\n{pinned_text}\nfooled worker:\n{fooled_text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(cluster.client.workers().await.unwrap().is_empty(), "no worker joined through the relay");
    let log = cluster.coordinator.as_ref().unwrap().log_text();
    assert!(log.contains("worker failed to prove its id"), "{log}");
    cluster.coordinator.as_mut().unwrap().kill9();
}

fn as_refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}
