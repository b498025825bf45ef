//! The worker stream as a foreign client sees it: a raw WebSocket.

mod common;

use common::Cluster;
use futures_util::{SinkExt, StreamExt};
use iog_proto::PROTOCOL_VERSION;
use iog_proto::stream::{CoordinatorMessage, WorkerMessage};
use iog_types::WorkerId;
use tokio_tungstenite::tungstenite::Message;

async fn first_answer(cluster: &Cluster, hello: String) -> CoordinatorMessage {
    let (mut socket, _) = tokio_tungstenite::connect_async(cluster.client.stream_url()).await.unwrap();
    socket.send(Message::Text(hello.into())).await.unwrap();
    loop {
        match socket.next().await.unwrap().unwrap() {
            Message::Text(text) => return serde_json::from_str(&text).unwrap(),
            _ => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_of_another_protocol_version_are_refused_with_the_reason() {
    let cluster = Cluster::start(0).await;
    let hello = WorkerMessage::Hello {
        protocol_version: PROTOCOL_VERSION + 1,
        worker_id: WorkerId("future-worker".into()),
        agent_version: "9.9.9".into(),
        devices: vec![],
        offer: iog_sched::Offer::cpu(1),
        held: vec![],
        probe_port: None,
    };
    let answer = first_answer(&cluster, serde_json::to_string(&hello).unwrap()).await;
    let CoordinatorMessage::Refused { code, message } = answer else { panic!("not refused: {answer:?}") };
    assert_eq!(code, "protocol_version");
    assert!(message.contains(&format!("speaks worker protocol {PROTOCOL_VERSION}")), "{message}");

    let answer = first_answer(&cluster, "{\"type\":\"heartbeat\"}".into()).await;
    assert!(matches!(answer, CoordinatorMessage::Refused { ref code, .. } if code == "bad_hello"), "{answer:?}");
    assert!(cluster.client.workers().await.unwrap().is_empty(), "refused workers are not recorded");
}
