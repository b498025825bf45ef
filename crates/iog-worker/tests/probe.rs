//! Probe sockets on loopback: real UDP round trips move Vivaldi
//! coordinates until they estimate the latencies between the sockets.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use iog_proto::stream::ProbePeer;
use iog_sched::Coord;
use iog_types::WorkerId;
use iog_worker::probe::{PACKET_BYTES, ProbeSocket, RTT_MS_FLOOR};

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Five nodes with access links of 2 to 30 ms. Each round, every node
/// probes every other at once, as it would the peers a coordinator names.
/// The latency between two nodes is about the sum of their links (plus the
/// timer's rounding), which a coordinate with heights can express; after
/// 20 rounds every estimate is within half of the round trip measured
/// afterwards, and the median within a tenth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coordinates_from_real_round_trips_estimate_the_latency_between_nodes() {
    let links_ms = [2u64, 5, 10, 20, 30];
    let mut nodes = Vec::new();
    for link_ms in links_ms {
        nodes.push(ProbeSocket::bind(loopback(), Duration::from_millis(link_ms)).await.unwrap());
    }
    let coords: Vec<Mutex<Coord>> = links_ms.iter().map(|_| Mutex::new(Coord::new())).collect();
    for _ in 0..20 {
        let rounds = nodes.iter().enumerate().map(|(idx, node)| {
            let peers: Vec<ProbePeer> = (0..nodes.len())
                .filter(|peer| *peer != idx)
                .map(|peer| ProbePeer {
                    worker_id: WorkerId(format!("node{peer}")),
                    addr: SocketAddr::from(([127, 0, 0, 1], nodes[peer].port())),
                    coord: *coords[peer].lock().unwrap(),
                })
                .collect();
            let coord = &coords[idx];
            async move { node.round(&peers, coord).await }
        });
        let answered = futures_util::future::join_all(rounds).await;
        assert!(answered.iter().all(|n| *n == nodes.len() - 1), "every peer answers on loopback: {answered:?}");
    }
    let mut errors = Vec::new();
    for a in 0..nodes.len() {
        for b in a + 1..nodes.len() {
            let addr_b = SocketAddr::from(([127, 0, 0, 1], nodes[b].port()));
            let truth_ms = nodes[a].fastest_round_trip_ms(addr_b).await.unwrap();
            let estimate_ms = coords[a].lock().unwrap().distance_ms(&coords[b].lock().unwrap());
            errors.push(((estimate_ms - truth_ms).abs() / truth_ms, a, b, estimate_ms, truth_ms));
        }
    }
    errors.sort_by(|x, y| x.0.total_cmp(&y.0));
    let median = errors[errors.len() / 2].0;
    let worst = errors.last().unwrap();
    assert!(median <= 0.10, "median relative error {median:.3}; all: {errors:?}");
    assert!(worst.0 <= 0.5, "worst relative error {:.3} (nodes {} and {}); all: {errors:?}", worst.0, worst.1, worst.2);
    for coord in &coords {
        assert!(coord.lock().unwrap().error < 0.5, "settled: {coords:?}");
    }
}

#[tokio::test]
async fn a_silent_peer_is_skipped_and_loopback_counts_as_the_floor() {
    let node = ProbeSocket::bind(loopback(), Duration::ZERO).await.unwrap();
    let other = ProbeSocket::bind(loopback(), Duration::ZERO).await.unwrap();
    // A bound UDP socket that never answers: its probes time out.
    let silent = std::net::UdpSocket::bind(loopback()).unwrap();
    let peer = |name: &str, port: u16| ProbePeer {
        worker_id: WorkerId(name.to_owned()),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
        coord: Coord::new(),
    };
    let coord = Mutex::new(Coord::new());
    let peers = [peer("other", other.port()), peer("silent", silent.local_addr().unwrap().port())];
    assert_eq!(node.round(&peers, &coord).await, 1);
    let rtt_ms = node.fastest_round_trip_ms(peers[0].addr).await.unwrap();
    assert!(rtt_ms < RTT_MS_FLOOR, "loopback is faster than the floor: {rtt_ms} ms");
    // What the coordinate learned is the floor, not the loopback's noise.
    let mut expected = Coord::new();
    assert!(expected.update(RTT_MS_FLOOR, &Coord::new()));
    assert_eq!(*coord.lock().unwrap(), expected);
}

#[tokio::test]
async fn junk_gets_no_answer() {
    let node = ProbeSocket::bind(loopback(), Duration::ZERO).await.unwrap();
    let client = tokio::net::UdpSocket::bind(loopback()).await.unwrap();
    let target = SocketAddr::from(([127, 0, 0, 1], node.port()));
    let mut buffer = [0u8; 64];
    for junk in [&b"hello"[..], &[0u8; PACKET_BYTES][..], &[0xFFu8; 48][..]] {
        client.send_to(junk, target).await.unwrap();
        let answer = tokio::time::timeout(Duration::from_millis(200), client.recv_from(&mut buffer)).await;
        assert!(answer.is_err(), "no answer to {junk:?}");
    }
    // A well-formed probe is answered with exactly its own bytes, kind aside.
    let mut probe = [0u8; PACKET_BYTES];
    probe[..4].copy_from_slice(b"IOGP");
    probe[4] = 1;
    probe[8..].copy_from_slice(&42u64.to_le_bytes());
    client.send_to(&probe, target).await.unwrap();
    let (len, _) = tokio::time::timeout(Duration::from_secs(1), client.recv_from(&mut buffer)).await.unwrap().unwrap();
    assert_eq!(len, PACKET_BYTES);
    assert_eq!(buffer[..4], probe[..4]);
    assert_eq!(buffer[8..PACKET_BYTES], probe[8..]);
}
