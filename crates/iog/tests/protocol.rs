//! The worker stream as a foreign client sees it: a raw WebSocket. A worker
//! proves its id by signing the session's nonce; nothing else is believed.

mod common;

use common::Cluster;
use futures_util::{SinkExt, StreamExt};
use iog_host::Identity;
use iog_proto::PROTOCOL_VERSION;
use iog_proto::stream::{CoordinatorMessage, WorkerMessage};
use iog_types::WorkerId;
use tokio_tungstenite::tungstenite::Message;

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_message(socket: &mut Socket) -> CoordinatorMessage {
    loop {
        match socket.next().await.unwrap().unwrap() {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            _ => continue,
        }
    }
}

/// Opens a session and returns it with the nonce and audience of its
/// challenge, the first thing the coordinator says.
async fn open(cluster: &Cluster) -> (Socket, String, String) {
    let (socket, nonce, audience, _) = open_bound(cluster).await;
    (socket, nonce, audience)
}

/// [`open`], and the TLS channel its hello must be signed for.
async fn open_bound(cluster: &Cluster) -> (Socket, String, String, String) {
    let connector = tokio_tungstenite::Connector::Rustls(cluster.client.tls_config().unwrap());
    let (mut socket, _) =
        tokio_tungstenite::connect_async_tls_with_config(cluster.client.stream_url(), None, false, Some(connector))
            .await
            .unwrap();
    let channel = match socket.get_ref() {
        tokio_tungstenite::MaybeTlsStream::Rustls(tls) => iog_client::tls::channel_of(tls.get_ref().1).unwrap(),
        _ => panic!("the test cluster serves TLS"),
    };
    match next_message(&mut socket).await {
        CoordinatorMessage::SessionChallenge { nonce, audience } => {
            assert_eq!(nonce.len(), 64, "a 32-byte nonce in hex");
            (socket, nonce, audience, channel)
        }
        other => panic!("a session starts with its challenge, not {other:?}"),
    }
}

fn hello(worker_id: &WorkerId, signature: String) -> WorkerMessage {
    WorkerMessage::Hello {
        protocol_version: PROTOCOL_VERSION,
        worker_id: worker_id.clone(),
        agent_version: "test".into(),
        devices: vec![],
        offer: iog_sched::Offer::cpu(1),
        held: vec![],
        probe_port: None,
        signature,
        seal_key: String::new(),
        seal_key_signature: String::new(),
    }
}

/// [`hello`] with the seal key of `identity`, signed by `seal_signer`.
fn hello_with_seal_key(identity: &Identity, signature: String, seal_signer: &Identity) -> WorkerMessage {
    let public = identity.seal_secret().public();
    let message = iog_seal::seal_key_signing_message(&identity.worker_id().0, &public);
    let mut hello = hello(&identity.worker_id(), signature);
    if let WorkerMessage::Hello { seal_key, seal_key_signature, .. } = &mut hello {
        *seal_key = public.to_hex();
        *seal_key_signature = hex::encode(seal_signer.sign(&message));
    }
    hello
}

/// Signs a session's nonce for `identity`, over the TLS channel `channel`.
fn signed(channel: &str, identity: &Identity, nonce: &str, audience: &str) -> String {
    let message = iog_proto::auth::session_signing_message(nonce, &identity.worker_id().0, audience, channel);
    hex::encode(identity.sign(&message))
}

/// Sends `message` on a fresh session and returns the coordinator's answer.
async fn answer_to(socket: &mut Socket, message: &WorkerMessage) -> CoordinatorMessage {
    socket.send(Message::Text(serde_json::to_string(message).unwrap().into())).await.unwrap();
    next_message(socket).await
}

fn refusal_code(answer: &CoordinatorMessage) -> &str {
    match answer {
        CoordinatorMessage::Refused { code, .. } => code,
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_of_another_protocol_version_are_refused_with_the_reason() {
    let cluster = Cluster::start(0).await;
    let (mut socket, _, _) = open(&cluster).await;
    let mut future = hello(&WorkerId("future-worker".into()), String::new());
    if let WorkerMessage::Hello { protocol_version, .. } = &mut future {
        *protocol_version = PROTOCOL_VERSION + 1;
    }
    let answer = answer_to(&mut socket, &future).await;
    let CoordinatorMessage::Refused { code, message } = answer else { panic!("not refused: {answer:?}") };
    assert_eq!(code, "protocol_version");
    assert!(message.contains(&format!("speaks worker protocol {PROTOCOL_VERSION}")), "{message}");

    // An older worker's hello has no signature at all: still the version.
    let (mut socket, _, _) = open(&cluster).await;
    let mut old = serde_json::to_value(hello(&WorkerId("old-worker".into()), String::new())).unwrap();
    old.as_object_mut().unwrap().remove("signature");
    old["protocol_version"] = (PROTOCOL_VERSION - 1).into();
    socket.send(Message::Text(old.to_string().into())).await.unwrap();
    let answer = next_message(&mut socket).await;
    assert_eq!(refusal_code(&answer), "protocol_version", "{answer:?}");

    let (mut socket, _, _) = open(&cluster).await;
    socket.send(Message::Text("{\"type\":\"heartbeat\"}".into())).await.unwrap();
    let answer = next_message(&mut socket).await;
    assert_eq!(refusal_code(&answer), "bad_hello", "{answer:?}");
    assert!(cluster.client.workers().await.unwrap().is_empty(), "refused workers are not recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_proves_its_id_and_cannot_act_as_another() {
    let cluster = Cluster::start(0).await;
    let honest = Identity::generate();
    let attacker = Identity::generate();

    // The attacker names the honest worker's id and signs with its own key.
    let (mut socket, nonce, audience, channel) = open_bound(&cluster).await;
    let forged = hello(&honest.worker_id(), signed(&channel, &attacker, &nonce, &audience));
    assert_eq!(refusal_code(&answer_to(&mut socket, &forged).await), "bad_signature");

    // No signature, or one that is not hex or not 64 bytes.
    for signature in [String::new(), "zz".into(), "ab".repeat(32)] {
        let (mut socket, _, _) = open(&cluster).await;
        let answer = answer_to(&mut socket, &hello(&honest.worker_id(), signature.clone())).await;
        assert_eq!(refusal_code(&answer), "bad_signature", "{signature:?}");
    }

    // A proven id with a seal key it did not sign (one the coordinator, or
    // anyone relaying it, swapped in) is refused, and so is no seal key.
    for with_foreign_seal_key in [true, false] {
        let (mut socket, nonce, audience, channel) = open_bound(&cluster).await;
        let session = signed(&channel, &honest, &nonce, &audience);
        let hello = if with_foreign_seal_key {
            hello_with_seal_key(&honest, session, &attacker)
        } else {
            hello(&honest.worker_id(), session)
        };
        assert_eq!(refusal_code(&answer_to(&mut socket, &hello).await), "bad_seal_key");
    }

    // The honest worker's own signature opens its session.
    let (mut socket, nonce, audience, channel) = open_bound(&cluster).await;
    assert_eq!(audience, cluster.client.health().await.unwrap().ledger_signer, "the audience is the coordinator's key");
    let good = hello_with_seal_key(&honest, signed(&channel, &honest, &nonce, &audience), &honest);
    let answer = answer_to(&mut socket, &good).await;
    assert!(matches!(answer, CoordinatorMessage::Welcome { .. }), "{answer:?}");
    // A session that then says nothing at all is closed once the worker
    // would count as dead (3 heartbeats of 100 ms here): every read has a
    // deadline.
    let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        loop {
            match socket.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a silent session stays open");

    // Its hello replayed word for word on a new session is refused: that
    // session's nonce is another.
    let (mut socket, _, _) = open(&cluster).await;
    assert_eq!(refusal_code(&answer_to(&mut socket, &good).await), "bad_signature");
    // So is a signature for another coordinator, or for another TLS
    // connection (what a man in the middle would relay: it holds one
    // connection to the worker and another to the coordinator).
    let (mut socket, nonce, _, channel) = open_bound(&cluster).await;
    let elsewhere = hello(&honest.worker_id(), signed(&channel, &honest, &nonce, "another-coordinator"));
    assert_eq!(refusal_code(&answer_to(&mut socket, &elsewhere).await), "bad_signature");
    let (_other, _, _, other_channel) = open_bound(&cluster).await;
    let (mut socket, nonce, audience, channel) = open_bound(&cluster).await;
    assert_ne!(channel, other_channel, "every connection has its own channel");
    let relayed = hello(&honest.worker_id(), signed(&other_channel, &honest, &nonce, &audience));
    assert_eq!(refusal_code(&answer_to(&mut socket, &relayed).await), "bad_signature");

    let workers = cluster.client.workers().await.unwrap();
    assert_eq!(workers.len(), 1, "only the proven worker was recorded: {workers:?}");
    assert_eq!(workers[0].worker_id, honest.worker_id());
    let log = cluster.coordinator.as_ref().unwrap().log_text();
    assert!(log.contains("worker failed to prove its id"), "refusals are logged:\n{log}");
}
