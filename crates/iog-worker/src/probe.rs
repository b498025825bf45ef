//! Peer probes: the worker's side of network coordinates.
//!
//! A worker keeps one UDP socket. It answers every probe that reaches it
//! with the same bytes (so an answer is never larger than the question and
//! the socket cannot amplify an attack), at most
//! [`REPLIES_PER_SECOND_MAX`] a second. When the coordinator names peers,
//! the worker sends each a few probes, takes the fastest round trip, and
//! moves its Vivaldi coordinate ([`iog_sched::Coord::update`]) toward
//! agreement with it. The coordinate goes to the coordinator with every
//! heartbeat.
//!
//! A probe is 16 bytes: the magic `IOGP`, a kind byte (request or reply),
//! three zero bytes and an 8-byte nonce the prober chose at random.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use iog_proto::stream::ProbePeer;
use iog_sched::Coord;
use tokio::net::UdpSocket;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// First bytes of every probe packet.
pub const MAGIC: [u8; 4] = *b"IOGP";
/// Length of a probe packet.
pub const PACKET_BYTES: usize = 16;
const KIND_REQUEST: u8 = 1;
const KIND_REPLY: u8 = 2;

/// Probes sent to each peer per round; the fastest round trip counts, which
/// filters out the delays of a busy machine or a momentary queue.
pub const SAMPLES_PER_PEER: usize = 3;
/// How long to wait for each answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// Round trips shorter than this count as this. Below a millisecond the
/// measuring process's own scheduling is as large as the network's part,
/// and the coordinate's relative error would chase noise; for placement a
/// LAN is a LAN.
pub const RTT_MS_FLOOR: f64 = 1.0;
/// Most probes answered per second; the rest are dropped.
pub const REPLIES_PER_SECOND_MAX: u32 = 200;
/// Most probes waiting for an answer at once.
const PENDING_MAX: usize = 64;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Instant>>>>;

/// The worker's probe socket: answers peers and measures round trips to them.
pub struct ProbeSocket {
    socket: Arc<UdpSocket>,
    pending: Pending,
    port: u16,
    receiver: JoinHandle<()>,
}

impl Drop for ProbeSocket {
    fn drop(&mut self) {
        self.receiver.abort();
    }
}

impl ProbeSocket {
    /// Binds the socket and starts answering probes.
    ///
    /// `link_delay` is zero for a real worker. Tests and simulations use it
    /// to stand for an access link: each answer this socket sends, and each
    /// answer it receives, is held back that long, so every round trip
    /// between two sockets takes the sum of their delays longer — what
    /// Vivaldi's height models.
    pub async fn bind(addr: SocketAddr, link_delay: Duration) -> std::io::Result<ProbeSocket> {
        let socket = Arc::new(UdpSocket::bind(addr).await?);
        let port = socket.local_addr()?.port();
        let pending: Pending = Arc::default();
        let receiver = tokio::spawn(receive(socket.clone(), pending.clone(), link_delay));
        Ok(ProbeSocket { socket, pending, port, receiver })
    }

    /// The UDP port it answers on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// One round trip to `peer`, or `None` without an answer in time.
    pub async fn round_trip(&self, peer: SocketAddr) -> Option<Duration> {
        let nonce: u64 = rand::random();
        let (answer_tx, answer_rx) = oneshot::channel();
        {
            let mut pending = self.pending.lock().expect("pending probes lock");
            if pending.len() >= PENDING_MAX {
                return None;
            }
            pending.insert(nonce, answer_tx);
        }
        let sent_at = Instant::now();
        let answered = match self.socket.send_to(&packet(KIND_REQUEST, nonce), peer).await {
            Ok(_) => tokio::time::timeout(PROBE_TIMEOUT, answer_rx).await.ok().and_then(Result::ok),
            Err(err) => {
                tracing::debug!(%peer, error = %err, "probe not sent");
                None
            }
        };
        self.pending.lock().expect("pending probes lock").remove(&nonce);
        answered.map(|at| at.duration_since(sent_at))
    }

    /// The fastest of [`SAMPLES_PER_PEER`] round trips to `peer`, in
    /// milliseconds, or `None` if none was answered.
    pub async fn fastest_round_trip_ms(&self, peer: SocketAddr) -> Option<f64> {
        let mut fastest: Option<Duration> = None;
        for _ in 0..SAMPLES_PER_PEER {
            if let Some(rtt) = self.round_trip(peer).await {
                fastest = Some(fastest.map_or(rtt, |f| f.min(rtt)));
            }
        }
        fastest.map(|rtt| rtt.as_secs_f64() * 1_000.0)
    }

    /// Probes every peer (at once) and updates `coord` with each answer.
    /// Returns how many peers answered.
    pub async fn round(&self, peers: &[ProbePeer], coord: &Mutex<Coord>) -> usize {
        let measured = futures_util::future::join_all(
            peers.iter().map(|peer| async move { (peer, self.fastest_round_trip_ms(peer.addr).await) }),
        )
        .await;
        let mut answered = 0;
        let mut coord = coord.lock().expect("coordinate lock");
        for (peer, rtt_ms) in measured {
            let Some(rtt_ms) = rtt_ms else {
                tracing::debug!(peer = %peer.worker_id.short(), addr = %peer.addr, "peer did not answer probes");
                continue;
            };
            if coord.update(rtt_ms.max(RTT_MS_FLOOR), &peer.coord) {
                answered += 1;
            }
        }
        answered
    }
}

fn packet(kind: u8, nonce: u64) -> [u8; PACKET_BYTES] {
    let mut packet = [0; PACKET_BYTES];
    packet[..4].copy_from_slice(&MAGIC);
    packet[4] = kind;
    packet[8..].copy_from_slice(&nonce.to_le_bytes());
    packet
}

/// The kind and nonce of a well-formed probe packet.
fn parse(bytes: &[u8]) -> Option<(u8, u64)> {
    if bytes.len() != PACKET_BYTES || bytes[..4] != MAGIC || bytes[5..8] != [0, 0, 0] {
        return None;
    }
    let nonce = u64::from_le_bytes(bytes[8..].try_into().expect("eight bytes"));
    Some((bytes[4], nonce))
}

/// Answers requests and hands replies to their waiting probes, until aborted.
async fn receive(socket: Arc<UdpSocket>, pending: Pending, link_delay: Duration) {
    let mut buffer = [0u8; 64];
    let mut window_start = Instant::now();
    let mut replies_in_window = 0u32;
    loop {
        let (len, from) = match socket.recv_from(&mut buffer).await {
            Ok(received) => received,
            Err(err) => {
                // ICMP errors from earlier sends surface here on some
                // systems; they say nothing about this socket.
                tracing::trace!(error = %err, "probe socket receive");
                continue;
            }
        };
        let arrived = Instant::now();
        match parse(&buffer[..len]) {
            Some((KIND_REQUEST, nonce)) => {
                if arrived.duration_since(window_start) >= Duration::from_secs(1) {
                    window_start = arrived;
                    replies_in_window = 0;
                }
                if replies_in_window >= REPLIES_PER_SECOND_MAX {
                    continue;
                }
                replies_in_window += 1;
                let reply = packet(KIND_REPLY, nonce);
                if link_delay.is_zero() {
                    let _ = socket.send_to(&reply, from).await;
                } else {
                    let socket = socket.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(link_delay).await;
                        let _ = socket.send_to(&reply, from).await;
                    });
                }
            }
            Some((KIND_REPLY, nonce)) => {
                let Some(waiting) = pending.lock().expect("pending probes lock").remove(&nonce) else { continue };
                if link_delay.is_zero() {
                    let _ = waiting.send(arrived);
                } else {
                    tokio::spawn(async move {
                        tokio::time::sleep(link_delay).await;
                        let _ = waiting.send(Instant::now());
                    });
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip_and_junk_is_refused() {
        let bytes = packet(KIND_REQUEST, 0xDEAD_BEEF);
        assert_eq!(parse(&bytes), Some((KIND_REQUEST, 0xDEAD_BEEF)));
        assert_eq!(parse(&bytes[..15]), None);
        let mut wrong_magic = bytes;
        wrong_magic[0] = b'X';
        assert_eq!(parse(&wrong_magic), None);
        let mut padded = bytes;
        padded[6] = 1;
        assert_eq!(parse(&padded), None);
    }
}
