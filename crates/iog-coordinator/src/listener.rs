//! Accepting connections: TCP with TCP_NODELAY, then a TLS handshake of its
//! own for each (bounded in time and in number), so that one slow or
//! silent client never holds up the next.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Most TLS handshakes under way at once; more connections wait in the
/// kernel's accept queue.
const HANDSHAKES_MAX: usize = 1024;
/// Accepted connections waiting for the server to take them.
const READY_QUEUE_MAX: usize = 1024;

/// One accepted connection, encrypted or (on loopback with `--insecure`) not.
/// Each holds its place in its address's count until it closes.
pub(crate) enum Conn {
    Plain(TcpStream, #[expect(dead_code, reason = "held for its Drop")] AddressSlot),
    Tls(Box<TlsStream<TcpStream>>, #[expect(dead_code, reason = "held for its Drop")] AddressSlot),
}

/// Connections open at once from one address (an IPv6 host by its /64),
/// served or in their handshake; more are closed as they come, so one
/// address cannot take all of the process's file descriptors.
const CONNECTIONS_PER_ADDRESS_MAX: u32 = 512;
/// TLS handshakes under way at once from one address, so one address cannot
/// take all of [`HANDSHAKES_MAX`].
const HANDSHAKES_PER_ADDRESS_MAX: u32 = 32;

/// Per address: connections open, and handshakes under way.
#[derive(Default)]
struct AddressCounts {
    open: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (u32, u32)>>,
}

impl AddressCounts {
    /// A place for one more connection from `ip` (and, with `handshake`,
    /// one more handshake), or `None` when the address is at its cap.
    fn take(self: &Arc<AddressCounts>, ip: std::net::IpAddr, handshake: bool) -> Option<AddressSlot> {
        let key = crate::limits::ip_key(ip);
        let mut open = self.open.lock().expect("address count lock");
        let (connections, handshakes) = open.entry(key).or_insert((0, 0));
        if *connections >= CONNECTIONS_PER_ADDRESS_MAX || (handshake && *handshakes >= HANDSHAKES_PER_ADDRESS_MAX) {
            return None;
        }
        *connections += 1;
        *handshakes += u32::from(handshake);
        Some(AddressSlot { counts: self.clone(), key, handshake })
    }
}

/// One connection's place in its address's count, freed when it closes.
pub(crate) struct AddressSlot {
    counts: Arc<AddressCounts>,
    key: std::net::IpAddr,
    /// Whether it still counts as a handshake under way.
    handshake: bool,
}

impl AddressSlot {
    /// The handshake is over; the connection still counts.
    fn handshake_done(&mut self) {
        if std::mem::take(&mut self.handshake) {
            let mut open = self.counts.open.lock().expect("address count lock");
            if let Some((_, handshakes)) = open.get_mut(&self.key) {
                *handshakes -= 1;
            }
        }
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        self.handshake_done();
        let mut open = self.counts.open.lock().expect("address count lock");
        if let Some((connections, _)) = open.get_mut(&self.key) {
            *connections -= 1;
            if *connections == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(stream, _) => Pin::new(stream).poll_read(cx, buf),
            Conn::Tls(stream, _) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(stream, _) => Pin::new(stream).poll_write(cx, buf),
            Conn::Tls(stream, _) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(stream, _) => Pin::new(stream).poll_flush(cx),
            Conn::Tls(stream, _) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(stream, _) => Pin::new(stream).poll_shutdown(cx),
            Conn::Tls(stream, _) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(stream, _) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Conn::Tls(stream, _) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Conn::Plain(stream, _) => stream.is_write_vectored(),
            Conn::Tls(stream, _) => stream.is_write_vectored(),
        }
    }
}

/// How long one connection may stay quiet, in milliseconds: the
/// coordinator's idle timeout, until the connection becomes a worker
/// session, which may stay quiet for as long as a worker may miss
/// heartbeats. Requests carry it as an extension; the stream handler raises it.
#[derive(Debug, Clone)]
pub(crate) struct IdleLimit(Arc<AtomicU64>);

impl IdleLimit {
    /// From now on the connection may stay quiet for `quiet`.
    pub(crate) fn raise_to(&self, quiet: Duration) {
        self.0.fetch_max(u64::try_from(quiet.as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

/// A connection that fails with `TimedOut` once it passes its deadline
/// with nothing read or written: `first` after it is accepted (hyper reads
/// the first bytes, to tell HTTP/1 from HTTP/2, with no deadline of its
/// own), then the idle limit after every byte that moves.
pub(crate) struct Quiet {
    inner: Conn,
    deadline: Pin<Box<tokio::time::Sleep>>,
    idle: IdleLimit,
}

impl Quiet {
    fn new(inner: Conn, first: Duration, idle: IdleLimit) -> Quiet {
        Quiet { inner, deadline: Box::pin(tokio::time::sleep(first)), idle }
    }

    /// Bytes moved: the deadline starts again.
    fn moved(&mut self) {
        let idle = Duration::from_millis(self.idle.0.load(Ordering::Relaxed));
        let next = tokio::time::Instant::now() + idle;
        self.deadline.as_mut().reset(next);
    }

    /// Nothing moved: an error once the deadline has passed (and a wake-up
    /// when it does).
    fn check(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the connection went quiet"))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Quiet {
    /// A write's outcome: bytes written restart the deadline; a write that
    /// cannot go on fails once the deadline has passed.
    fn wrote(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match polled {
            Poll::Ready(Ok(n)) => {
                if n > 0 {
                    self.moved();
                }
                Poll::Ready(Ok(n))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => self.check(cx).map_ok(|()| 0),
        }
    }
}

impl AsyncRead for Quiet {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.moved();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
            Poll::Pending => this.check(cx),
        }
    }
}

impl AsyncWrite for Quiet {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.wrote(cx, polled)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Pending => this.check(cx),
            ready => ready,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Closing writes TLS's close_notify, which a peer that stopped
        // reading would hold up forever.
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Pending => this.check(cx),
            ready => ready,
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.wrote(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// How long a peer may take at each step of a connection, and how long it
/// may stay silent. Every network read the coordinator makes is bounded by
/// one of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionTimeouts {
    /// To finish the TLS handshake. Default 10 s.
    pub handshake: Duration,
    /// To send a request's headers once it begins one, or once it connects
    /// (the first bytes included). Default 15 s.
    pub header_read: Duration,
    /// Most time a connection may pass with no byte read or written, in
    /// either direction: a request body that stops coming, a response
    /// nobody reads, an idle HTTP/2 connection, or a handler that takes as
    /// long (hyper keeps reading while it runs). A worker session may stay
    /// quiet for as long as a worker may miss heartbeats, if that is more.
    /// Default 60 s.
    pub idle: Duration,
}

impl Default for ConnectionTimeouts {
    fn default() -> ConnectionTimeouts {
        ConnectionTimeouts {
            handshake: Duration::from_secs(10),
            header_read: Duration::from_secs(15),
            idle: Duration::from_secs(60),
        }
    }
}

/// One connection ready to serve: where it comes from, and the channel its
/// signatures must name (see [`iog_proto::auth::channel_of_exporter`]).
pub(crate) struct Accepted {
    conn: Conn,
    remote: SocketAddr,
    channel: Channel,
}

/// The TLS channel a request came over, as signatures name it: the
/// connection's exporter value (RFC 9266), or `plain` on `--insecure`.
/// Every request carries it as an extension.
#[derive(Debug, Clone)]
pub(crate) struct Channel(pub(crate) Arc<str>);

/// Connections ready to serve, fed by a task that accepts and handshakes.
pub(crate) struct Incoming {
    ready: mpsc::Receiver<Accepted>,
}

impl Incoming {
    /// Starts accepting on `listener`; with `tls`, every connection is a
    /// TLS server connection. The task ends when the `Incoming` is dropped.
    pub(crate) fn start(
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        timeouts: ConnectionTimeouts,
    ) -> Incoming {
        let (ready_tx, ready) = mpsc::channel(READY_QUEUE_MAX);
        let acceptor = tls.map(TlsAcceptor::from);
        tokio::spawn(accept_loop(listener, acceptor, ready_tx, timeouts.handshake));
        Incoming { ready }
    }

    /// The next connection; never returns once the accepting task is gone
    /// (it only goes when this side is dropped).
    async fn accept(&mut self) -> Accepted {
        match self.ready.recv().await {
            Some(accepted) => accepted,
            None => std::future::pending().await,
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: Option<TlsAcceptor>,
    ready: mpsc::Sender<Accepted>,
    handshake_timeout: Duration,
) {
    let handshakes = Arc::new(Semaphore::new(HANDSHAKES_MAX));
    let counts = Arc::new(AddressCounts::default());
    loop {
        let permit = tokio::select! {
            permit = handshakes.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = ready.closed() => return,
        };
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = ready.closed() => return,
        };
        // Stream messages are small and latency-bound: without TCP_NODELAY,
        // Nagle's algorithm and delayed ACKs hold each one back ~40 ms.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "could not set TCP_NODELAY");
        }
        let Some(mut slot) = counts.take(remote.ip(), acceptor.is_some()) else {
            tracing::debug!(%remote, "closing a connection: its address is at its cap");
            continue;
        };
        let Some(acceptor) = acceptor.clone() else {
            let channel = Channel(iog_proto::auth::channel_of_exporter(None).into());
            if ready.send(Accepted { conn: Conn::Plain(tcp, slot), remote, channel }).await.is_err() {
                return;
            }
            continue;
        };
        let ready = ready.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(handshake_timeout, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => {
                    slot.handshake_done();
                    let mut exporter = [0u8; iog_proto::auth::CHANNEL_BINDING_BYTES];
                    let channel = match stream.get_ref().1.export_keying_material(
                        &mut exporter,
                        iog_proto::auth::CHANNEL_BINDING_LABEL,
                        None,
                    ) {
                        Ok(_) => Channel(iog_proto::auth::channel_of_exporter(Some(&exporter)).into()),
                        Err(err) => {
                            tracing::debug!(%remote, error = %err, "no TLS exporter for the connection");
                            return;
                        }
                    };
                    let _ = ready.send(Accepted { conn: Conn::Tls(Box::new(stream), slot), remote, channel }).await;
                }
                Ok(Err(err)) => tracing::debug!(%remote, error = %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%remote, "TLS handshake timed out"),
            }
        });
    }
}

/// The address a connection comes from, as handlers see it (axum's
/// `ConnectInfo<PeerAddr>`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub(crate) SocketAddr);

/// How long a shutdown waits for requests in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Requests at once on one HTTP/2 connection.
const HTTP2_STREAMS_MAX: u32 = 128;

/// Serves `app` on every connection `incoming` yields until `shutdown`
/// turns true, every read bounded by `timeouts`; then lets requests in
/// flight finish, for at most [`DRAIN_TIMEOUT`].
pub(crate) async fn serve(
    mut incoming: Incoming,
    app: axum::Router,
    timeouts: ConnectionTimeouts,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> io::Result<()> {
    use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
    use tower::ServiceExt;

    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).header_read_timeout(timeouts.header_read);
    // No HTTP/2 keep-alive pings: answered pings would keep an idle
    // connection alive past the idle deadline, which already closes a
    // peer that vanished.
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(HTTP2_STREAMS_MAX);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let Accepted { conn, remote, channel } = tokio::select! {
            accepted = incoming.accept() => accepted,
            _ = shutdown.wait_for(|stop| *stop) => break,
        };
        let app = app.clone();
        let idle =
            IdleLimit(Arc::new(AtomicU64::new(u64::try_from(timeouts.idle.as_millis()).unwrap_or(u64::MAX).max(1))));
        // Handlers learn the address a request comes from (rate limits,
        // and a worker's probe address) as axum's `ConnectInfo`, the
        // channel it came over, and its connection's idle limit.
        let limit = idle.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(axum::extract::ConnectInfo(PeerAddr(remote)));
            request.extensions_mut().insert(channel.clone());
            request.extensions_mut().insert(limit.clone());
            app.clone().oneshot(request)
        });
        let conn = Quiet::new(conn, timeouts.header_read, idle);
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(conn), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(%remote, error = %err, "connection ended with an error");
            }
        });
    }
    drop(incoming);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::info!("requests still in flight after {DRAIN_TIMEOUT:?}; stopping anyway");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_capped_and_a_closed_connection_frees_its_place() {
        let counts = Arc::new(AddressCounts::default());
        let ip: std::net::IpAddr = "192.0.2.7".parse().unwrap();
        let mut slots: Vec<AddressSlot> =
            (0..HANDSHAKES_PER_ADDRESS_MAX).map(|_| counts.take(ip, true).unwrap()).collect();
        assert!(counts.take(ip, true).is_none(), "handshakes from one address are capped");
        assert!(counts.take("192.0.2.8".parse().unwrap(), true).is_some(), "another address is not");
        slots[0].handshake_done();
        assert!(counts.take(ip, true).is_some(), "a finished handshake frees a handshake place");
        slots.clear();
        assert!(counts.open.lock().unwrap().get(&ip).is_none(), "closed connections leave no count behind");
    }
}
