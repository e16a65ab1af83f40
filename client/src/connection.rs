//! One QUIC connection and its control stream.
//!
//! [`Connection::open`] resolves the server, does the handshake with the
//! trust [`Anchor`], opens the control stream and starts two tasks: a writer
//! that owns the `SendStream` and writes frames queued on an mpsc channel, and
//! a reader that owns the `RecvStream`, completes pending requests by `re`
//! and forwards events. [`Connection::request`] is the typed call; replies
//! may arrive in any order. Both tasks end when the QUIC connection does, and
//! dropping the last [`Connection`] handle closes it.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use qchat_protocol::{
    CloseCode, Event, FrameReader, Op, ReadFrameError, Reply, Request, ServerMsg, encode_json,
};
use serde::de::DeserializeOwned;
use tokio::sync::{mpsc, oneshot};
use tokio_util::task::TaskTracker;
use tracing::{debug, warn};

use crate::config::ClientConfig;
use crate::error::{ClientError, describe_close};
use crate::mutex::lock;
use crate::trust::{self, Anchor, Seen};

/// Frames waiting for the writer. Small: requests are few and the writer is
/// only ever held up by QUIC flow control.
const OUTBOUND_QUEUE: usize = 64;
/// Handshake budget per address when more addresses remain to try.
const PER_ADDRESS_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshake budget for the last (or only) address.
const LAST_ADDRESS_TIMEOUT: Duration = Duration::from_secs(10);
/// UDP socket buffer asked for in each direction (the kernel caps it at
/// `net.core.rmem_max`/`wmem_max`): a download burst that overflows the
/// 208 KiB default is dropped and sent again.
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// Requests waiting for their reply, by id. Only touched in short,
/// non-async sections, so a std mutex is right.
type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Reply>>>>;

/// A live (or just ended) connection to the server. See the module docs.
pub(crate) struct Connection {
    quic: quinn::Connection,
    /// This connection's own endpoint (one per connection), kept so that
    /// [`Connection::rebind`] can move it to a new socket.
    endpoint: quinn::Endpoint,
    out: mpsc::Sender<Bytes>,
    pending: Pending,
    next_id: AtomicU64,
    fingerprint: String,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("remote", &self.quic.remote_address()).finish()
    }
}

impl Connection {
    /// Connects to `server` (one of `cfg`'s addresses), verifies the certificate against `anchor`,
    /// opens the control stream and starts the reader and writer on
    /// `tracker`. Events are sent to `events` (with backpressure).
    ///
    /// # Errors
    /// [`ClientError::UnknownHost`] / [`ClientError::HostChanged`] for
    /// certificate refusals, [`ClientError::Connect`] for anything else.
    pub(crate) async fn open(
        cfg: &ClientConfig,
        server: &str,
        anchor: &Anchor,
        events: mpsc::Sender<Event>,
        tracker: &TaskTracker,
    ) -> Result<Arc<Self>, ClientError> {
        let connect_err =
            |reason: String| ClientError::Connect { server: server.to_owned(), reason };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host(server)
            .await
            .map_err(|e| connect_err(format!("resolving: {e}")))?
            .collect();
        if addrs.is_empty() {
            return Err(connect_err("the name resolves to no address".to_owned()));
        }
        let server_name = cfg.effective_server_name(server);
        let mut last_err = connect_err("no address tried".to_owned());
        for (i, addr) in addrs.iter().enumerate() {
            let budget =
                if i + 1 < addrs.len() { PER_ADDRESS_TIMEOUT } else { LAST_ADDRESS_TIMEOUT };
            let seen = Seen::default();
            let attempt = handshake(*addr, &server_name, anchor, seen.clone());
            let result = match tokio::time::timeout(budget, attempt).await {
                Ok(result) => result,
                Err(_) => Err("handshake timed out".to_owned()),
            };
            match result {
                Ok((endpoint, quic)) => return Self::start(endpoint, quic, events, tracker).await,
                Err(reason) => {
                    let seen = seen.lock().ok().and_then(|s| s.clone());
                    if let Some(refusal) =
                        trust::classify_rejection(server, anchor, seen.as_deref())
                    {
                        return Err(refusal);
                    }
                    debug!(%addr, %reason, "connection attempt failed");
                    let many = addrs.len() > 1;
                    last_err = connect_err(if many { format!("{addr}: {reason}") } else { reason });
                }
            }
        }
        Err(last_err)
    }

    async fn start(
        endpoint: quinn::Endpoint,
        quic: quinn::Connection,
        events: mpsc::Sender<Event>,
        tracker: &TaskTracker,
    ) -> Result<Arc<Self>, ClientError> {
        let fingerprint = peer_fingerprint(&quic)
            .ok_or_else(|| ClientError::Protocol("server presented no certificate".to_owned()))?;
        let (send, recv) = quic.open_bi().await.map_err(|e| ClientError::Connect {
            server: quic.remote_address().to_string(),
            reason: format!("opening the control stream: {}", describe_close(&e)),
        })?;
        let (out, out_rx) = mpsc::channel(OUTBOUND_QUEUE);
        let pending = Pending::default();
        tracker.spawn(write_loop(quic.clone(), send, out_rx));
        tracker.spawn(read_loop(quic.clone(), recv, pending.clone(), events));
        Ok(Arc::new(Self { quic, endpoint, out, pending, next_id: AtomicU64::new(1), fingerprint }))
    }

    /// SHA-256 of the server's certificate on this connection.
    pub(crate) fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// Whether the connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.quic.close_reason().is_some()
    }

    /// Waits for the connection to end and says why.
    pub(crate) async fn closed(&self) -> String {
        describe_close(&self.quic.closed().await)
    }

    /// Moves the connection to a new UDP socket on a new local port, as a
    /// NAT rebinding or a Wi-Fi to 4G switch would; QUIC migrates the
    /// connection to the new path without a new handshake.
    ///
    /// # Errors
    /// When no socket can be bound.
    pub(crate) fn rebind(&self) -> std::io::Result<()> {
        let old = self.endpoint.local_addr()?;
        let socket = bind_socket(old.is_ipv4())?;
        self.endpoint.rebind(socket)?;
        debug!(%old, new = ?self.endpoint.local_addr(), "rebound the UDP socket");
        Ok(())
    }

    /// Ends the connection here without telling the server, as a network
    /// that vanishes would: the endpoint moves to a [`BlackHole`] socket
    /// that swallows every datagram (the CONNECTION_CLOSE of the local close
    /// among them) and receives nothing, so the server only learns of it at
    /// its idle timeout. The supervisor reconnects on a fresh endpoint.
    ///
    /// # Errors
    /// When the old socket's address cannot be read.
    pub(crate) fn abandon(&self) -> std::io::Result<()> {
        let addr = self.endpoint.local_addr()?;
        // Twice: quinn keeps reading the previous socket after a rebind and
        // answers what arrives there through it — a stateless reset that
        // would tell the server at once. The second rebind drops the real
        // socket; the server's datagrams then meet a closed port.
        self.endpoint.rebind_abstract(Arc::new(BlackHole { addr }))?;
        self.endpoint.rebind_abstract(Arc::new(BlackHole { addr }))?;
        self.quic.close(CloseCode::Normal.code().into(), b"abandoned");
        debug!(%addr, "abandoned the connection without a close");
        Ok(())
    }

    /// The local address of the connection's UDP socket.
    pub(crate) fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.endpoint.local_addr()
    }

    /// The current round-trip time estimate.
    pub(crate) fn rtt(&self) -> Duration {
        self.quic.rtt()
    }

    /// Opens a unidirectional stream (an upload); waits while the server's
    /// stream limit is reached.
    pub(crate) async fn open_uni(&self) -> Result<quinn::SendStream, quinn::ConnectionError> {
        self.quic.open_uni().await
    }

    /// Accepts the next server-opened unidirectional stream (a download).
    pub(crate) async fn accept_uni(&self) -> Result<quinn::RecvStream, quinn::ConnectionError> {
        self.quic.accept_uni().await
    }

    /// Closes the connection now with `code` and `reason` (no goodbye).
    pub(crate) fn close(&self, code: CloseCode, reason: &str) {
        self.quic.close(code.code().into(), reason.as_bytes());
    }

    /// Sends `op` and waits for its reply, decoded as `T`.
    ///
    /// # Errors
    /// [`ClientError::Server`] for an `err` reply, [`ClientError::Disconnected`]
    /// if the connection ends first, [`ClientError::Protocol`] if the reply
    /// does not have the expected shape.
    pub(crate) async fn request<T: DeserializeOwned>(&self, op: Op) -> Result<T, ClientError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let name = op.name();
        let frame = encode_json(&Request { id, op })
            .map_err(|e| ClientError::Protocol(format!("encoding {name}: {e}")))?;
        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(id, tx);
        // The reader clears `pending` after the connection ends; checking
        // after inserting means a request never waits on a dead connection.
        if self.is_closed() {
            self.lock_pending().remove(&id);
            return Err(self.lost());
        }
        if self.out.send(frame).await.is_err() {
            self.lock_pending().remove(&id);
            return Err(self.lost());
        }
        let reply = rx.await.map_err(|_| self.lost())?;
        match reply {
            Reply::Ok(value) => serde_json::from_value(value)
                .map_err(|e| ClientError::Protocol(format!("unexpected {name} reply: {e}"))),
            Reply::Err(body) => Err(ClientError::Server(body)),
        }
    }

    fn lost(&self) -> ClientError {
        ClientError::Disconnected(match self.quic.close_reason() {
            Some(e) => describe_close(&e),
            None => "control stream ended".to_owned(),
        })
    }

    fn lock_pending(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Reply>>> {
        lock(&self.pending)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Nobody can send requests any more: end the tasks and tell the server.
        self.quic.close(CloseCode::Normal.code().into(), b"client closed");
    }
}

/// A socket that is no socket: every datagram sent into it disappears and
/// nothing ever arrives (see [`Connection::abandon`]). It reports the address
/// of the socket it replaced.
#[derive(Debug)]
struct BlackHole {
    addr: SocketAddr,
}

/// Writing into a [`BlackHole`] never has to wait.
#[derive(Debug)]
struct AlwaysWritable;

impl quinn::UdpPoller for AlwaysWritable {
    fn poll_writable(
        self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

impl quinn::AsyncUdpSocket for BlackHole {
    fn create_io_poller(self: Arc<Self>) -> std::pin::Pin<Box<dyn quinn::UdpPoller>> {
        Box::pin(AlwaysWritable)
    }

    fn try_send(&self, _transmit: &quinn::udp::Transmit) -> std::io::Result<()> {
        Ok(())
    }

    fn poll_recv(
        &self,
        _cx: &mut std::task::Context,
        _bufs: &mut [std::io::IoSliceMut<'_>],
        _meta: &mut [quinn::udp::RecvMeta],
    ) -> std::task::Poll<std::io::Result<usize>> {
        // Never ready: the endpoint's driver is woken by its connections'
        // own events until they are gone.
        std::task::Poll::Pending
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// A UDP socket on an ephemeral port with [`SOCKET_BUFFER`] asked for
/// (best effort: the kernel may give less).
fn bind_socket(ipv4: bool) -> std::io::Result<std::net::UdpSocket> {
    let bind: SocketAddr =
        if ipv4 { (Ipv4Addr::UNSPECIFIED, 0).into() } else { (Ipv6Addr::UNSPECIFIED, 0).into() };
    let socket = std::net::UdpSocket::bind(bind)?;
    let state = quinn::udp::UdpSocketState::new((&socket).into())?;
    if let Err(e) = state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER) {
        debug!(cause = %e, "could not enlarge the receive buffer");
    }
    if let Err(e) = state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER) {
        debug!(cause = %e, "could not enlarge the send buffer");
    }
    Ok(socket)
}

/// Handshake on a fresh endpoint of its own (so a rebind moves only this
/// connection).
async fn handshake(
    addr: SocketAddr,
    server_name: &str,
    anchor: &Anchor,
    seen: Seen,
) -> Result<(quinn::Endpoint, quinn::Connection), String> {
    let config = trust::quic_config(anchor, seen).map_err(|e| e.to_string())?;
    let socket = bind_socket(addr.is_ipv4()).map_err(|e| format!("binding a UDP socket: {e}"))?;
    let runtime = quinn::default_runtime().ok_or("no async runtime for QUIC")?;
    let endpoint = quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime)
        .map_err(|e| format!("binding a UDP socket: {e}"))?;
    let connecting = endpoint.connect_with(config, addr, server_name).map_err(|e| e.to_string())?;
    let quic = connecting.await.map_err(|e| describe_close(&e))?;
    Ok((endpoint, quic))
}

fn peer_fingerprint(quic: &quinn::Connection) -> Option<String> {
    let identity = quic.peer_identity()?;
    let certs = identity.downcast::<Vec<rustls::pki_types::CertificateDer<'static>>>().ok()?;
    certs.first().map(|c| trust::fingerprint(c))
}

async fn write_loop(
    quic: quinn::Connection,
    mut send: quinn::SendStream,
    mut frames: mpsc::Receiver<Bytes>,
) {
    loop {
        let frame = tokio::select! {
            frame = frames.recv() => frame,
            _ = quic.closed() => return,
        };
        let Some(frame) = frame else {
            // Every handle is gone: finish the stream politely.
            let _ = send.finish();
            return;
        };
        if let Err(e) = send.write_all(&frame).await {
            debug!(cause = %e, "control stream write failed");
            quic.close(CloseCode::ProtocolError.code().into(), b"control stream write failed");
            return;
        }
    }
}

async fn read_loop(
    quic: quinn::Connection,
    recv: quinn::RecvStream,
    pending: Pending,
    events: mpsc::Sender<Event>,
) {
    let mut frames = FrameReader::with_capacity(recv, 16 * 1024);
    let why = loop {
        match frames.next().await {
            Ok(Some(payload)) => {
                if let Some(why) = dispatch(&quic, &payload, &pending, &events).await {
                    break why;
                }
            }
            Ok(None) => {
                quic.close(CloseCode::ProtocolError.code().into(), b"control stream finished");
                break "server finished the control stream".to_owned();
            }
            Err(ReadFrameError::Decode(e)) => {
                quic.close(CloseCode::FrameTooLarge.code().into(), b"frame too large");
                break e.to_string();
            }
            Err(ReadFrameError::Io(e)) => break e.to_string(),
        }
    };
    debug!(%why, "control stream reader stopped");
    // Wake every waiting request: their senders drop here.
    lock(&pending).clear();
}

/// Handles one payload; `Some(reason)` ends the reader.
async fn dispatch(
    quic: &quinn::Connection,
    payload: &[u8],
    pending: &Pending,
    events: &mpsc::Sender<Event>,
) -> Option<String> {
    match ServerMsg::parse(payload) {
        Ok(ServerMsg::Response(resp)) => {
            let waiter = resp.re.and_then(|id| lock(pending).remove(&id));
            match waiter {
                // The requester may have given up; nothing to do then.
                Some(waiter) => drop(waiter.send(resp.reply)),
                None => warn!(re = ?resp.re, reply = ?resp.reply, "reply to no pending request"),
            }
            None
        }
        Ok(ServerMsg::Event(ev)) => tokio::select! {
            sent = events.send(*ev) => sent.err().map(|_| "client stopped".to_owned()),
            e = quic.closed() => Some(describe_close(&e)),
        },
        Err(e) => {
            // Unknown events or fields from a newer server must not kill the
            // connection; a frame that is not even an object is logged too.
            warn!(cause = %e, "ignoring unparsable server frame");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    //! Against a scripted in-process QUIC server (rcgen certificate): real
    //! handshakes for the trust decisions, real frames for reply matching.

    use super::*;
    use crate::config::{Auth, Trust};
    use qchat_protocol::Response;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

    struct FakeServer {
        endpoint: quinn::Endpoint,
        fingerprint: String,
    }

    fn fake_server() -> FakeServer {
        fake_server_with_idle(None)
    }

    /// A fake server whose connections time out after `idle` without a
    /// datagram (quinn's default when `None`).
    fn fake_server_with_idle(idle: Option<Duration>) -> FakeServer {
        let cert =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let der: CertificateDer<'static> = cert.cert.der().clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("tls13")
            .with_no_client_auth()
            .with_single_cert(vec![der.clone()], key)
            .expect("server cert");
        tls.alpn_protocols = vec![qchat_protocol::ALPN.to_vec()];
        let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).expect("quic tls");
        let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        if let Some(idle) = idle {
            let mut transport = quinn::TransportConfig::default();
            transport.max_idle_timeout(Some(idle.try_into().expect("idle timeout")));
            config.transport_config(Arc::new(transport));
        }
        let endpoint =
            quinn::Endpoint::server(config, (Ipv4Addr::LOCALHOST, 0).into()).expect("bind");
        FakeServer { endpoint, fingerprint: trust::fingerprint(&der) }
    }

    fn cfg(server: &FakeServer) -> ClientConfig {
        let addr = server.endpoint.local_addr().expect("addr");
        ClientConfig::new(
            addr.to_string(),
            "t",
            "u",
            Auth::Password("p".into()),
            Trust::Fingerprint(server.fingerprint.clone()),
        )
    }

    /// Accepts one connection and its control stream, reads `n` requests,
    /// then answers them in reverse order with their op name, and sends an
    /// event.
    async fn answer_reversed(endpoint: quinn::Endpoint, n: usize) {
        let Some(incoming) = endpoint.accept().await else { return };
        let Ok(conn) = incoming.await else { return };
        let Ok((mut send, recv)) = conn.accept_bi().await else { return };
        let mut frames = FrameReader::with_capacity(recv, 1024);
        let mut requests = Vec::new();
        while requests.len() < n {
            let Ok(Some(payload)) = frames.next().await else { return };
            requests.push(Request::parse(&payload).expect("request"));
        }
        for req in requests.iter().rev() {
            let reply =
                Response::ok(req.id, &serde_json::json!({ "op": req.op.name() })).expect("reply");
            let frame = encode_json(&reply).expect("frame");
            send.write_all(&frame).await.expect("write");
        }
        let event = serde_json::json!({"ev": "lagged", "room": "general"});
        send.write_all(&encode_json(&event).expect("frame")).await.expect("write");
        conn.closed().await;
    }

    #[derive(serde::Deserialize)]
    struct Echo {
        op: String,
    }

    #[tokio::test]
    async fn replies_are_matched_by_id_and_events_forwarded() {
        let server = fake_server();
        let script = tokio::spawn(answer_reversed(server.endpoint.clone(), 2));
        let cfg = cfg(&server);
        let anchor = trust::initial_anchor(&cfg, &cfg.server).expect("anchor");
        let tracker = TaskTracker::new();
        let (events_tx, mut events) = mpsc::channel(8);
        let conn = Connection::open(&cfg, &cfg.server, &anchor, events_tx, &tracker)
            .await
            .expect("connects");
        assert_eq!(conn.fingerprint(), server.fingerprint);
        let (a, b) = tokio::join!(
            conn.request::<Echo>(Op::Ping),
            conn.request::<Echo>(Op::Rooms(Default::default()))
        );
        assert_eq!(a.expect("ping reply").op, "ping");
        assert_eq!(b.expect("rooms reply").op, "rooms");
        let ev = tokio::time::timeout(Duration::from_secs(5), events.recv()).await;
        assert!(matches!(ev, Ok(Some(Event::Lagged(l))) if l.room == "general"));
        drop(conn);
        tokio::time::timeout(Duration::from_secs(5), script).await.expect("ends").expect("ok");
        tracker.close();
        tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await.expect("tasks end");
    }

    /// How the fake server saw its next connection end.
    async fn next_end(endpoint: &quinn::Endpoint) -> quinn::ConnectionError {
        let incoming = endpoint.accept().await.expect("a connection");
        incoming.await.expect("handshake").closed().await
    }

    #[tokio::test]
    async fn an_abandoned_connection_ends_at_the_servers_idle_timeout() {
        let idle = Duration::from_millis(600);
        let server = fake_server_with_idle(Some(idle));
        let cfg = cfg(&server);
        let anchor = trust::initial_anchor(&cfg, &cfg.server).expect("anchor");
        let tracker = TaskTracker::new();
        let wait = Duration::from_secs(5);

        // A close reaches the server at once.
        let end = tokio::spawn({
            let endpoint = server.endpoint.clone();
            async move { next_end(&endpoint).await }
        });
        let (tx, _rx) = mpsc::channel(1);
        let conn =
            Connection::open(&cfg, &cfg.server, &anchor, tx, &tracker).await.expect("connects");
        conn.close(CloseCode::Normal, "bye");
        let seen = tokio::time::timeout(wait, end).await.expect("in time").expect("task");
        assert!(matches!(seen, quinn::ConnectionError::ApplicationClosed(_)), "{seen:?}");

        // An abandoned one ends here at once, and there only by timing out.
        let end = tokio::spawn({
            let endpoint = server.endpoint.clone();
            async move {
                let seen = next_end(&endpoint).await;
                (seen, std::time::Instant::now())
            }
        });
        let (tx, _rx) = mpsc::channel(1);
        let conn =
            Connection::open(&cfg, &cfg.server, &anchor, tx, &tracker).await.expect("connects");
        let old = conn.local_addr().expect("address");
        let abandoned_at = std::time::Instant::now();
        conn.abandon().expect("abandons");
        tokio::time::timeout(wait, conn.closed()).await.expect("closed locally at once");
        assert!(conn.is_closed());
        assert_eq!(conn.local_addr().expect("address"), old);
        drop(conn);
        let (seen, at) = tokio::time::timeout(wait, end).await.expect("in time").expect("task");
        assert!(matches!(seen, quinn::ConnectionError::TimedOut), "{seen:?}");
        assert!(at - abandoned_at >= idle / 2, "noticed after {:?}", at - abandoned_at);
        server.endpoint.close(0u32.into(), b"done");
    }

    #[tokio::test]
    async fn trust_decisions_on_real_handshakes() {
        let server = fake_server();
        let good = cfg(&server);
        let tracker = TaskTracker::new();
        let open = |cfg: ClientConfig| {
            let tracker = tracker.clone();
            async move {
                let anchor = trust::initial_anchor(&cfg, &cfg.server)?;
                let (tx, _rx) = mpsc::channel(1);
                Connection::open(&cfg, &cfg.server, &anchor, tx, &tracker).await.map(drop)
            }
        };
        let accept = {
            let endpoint = server.endpoint.clone();
            tokio::spawn(async move {
                while let Some(incoming) = endpoint.accept().await {
                    drop(incoming.await);
                }
            })
        };

        open(good.clone()).await.expect("pinned certificate accepted");

        let wrong = "00".repeat(32);
        let mut changed = good.clone();
        changed.trust = Trust::Fingerprint(wrong.clone());
        assert_eq!(
            open(changed).await,
            Err(ClientError::HostChanged {
                server: good.server.clone(),
                expected: wrong,
                got: server.fingerprint.clone()
            })
        );

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        let mut tofu = good.clone();
        tofu.trust = Trust::KnownHosts { path: path.clone(), accept_new: false };
        assert_eq!(
            open(tofu.clone()).await,
            Err(ClientError::UnknownHost {
                server: good.server.clone(),
                fingerprint: server.fingerprint.clone()
            })
        );
        assert!(!path.exists(), "nothing recorded without accept_new");

        let mut roots = good.clone();
        roots.trust = Trust::SystemRoots;
        assert!(matches!(open(roots).await, Err(ClientError::Connect { .. })), "self-signed");

        server.endpoint.close(0u32.into(), b"done");
        accept.abort();
    }
}
