//! A light client connection for load generation: one bidirectional stream
//! carrying length-prefixed frames, over UDP sockets (quinn endpoints) shared
//! by many connections. The same type drives `qchatd` (JSON frames, ALPN
//! `qchat/1`) and the baseline servers (raw frames, ALPN `qchat-bench`), so
//! both sides of a comparison pay exactly the same client costs.
//!
//! The full client library (`qchat_client::Client`) is one endpoint (socket),
//! a supervisor, a sequencer and an event queue per connection; a thousand of
//! them in the load generator would compete with the server for the two cores
//! and could not be matched by the baseline. It is used where no baseline
//! shares the clients (the login storm).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::BytesMut;
use qchat_protocol::{FrameReader, encode_frame};
use quinn::{Connection, RecvStream, SendStream};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Value, json};

use crate::baseline;

/// Bound on a handshake or a setup request.
pub(crate) const SETUP_STEP: Duration = Duration::from_secs(30);

/// Client endpoints (UDP sockets), each shared by several connections.
pub(crate) struct Endpoints {
    eps: Vec<quinn::Endpoint>,
    next: AtomicUsize,
    addr: SocketAddr,
}

impl Endpoints {
    /// `count` endpoints speaking qchat (ALPN `qchat/1`) to `addr`, trusting
    /// the certificate in `data_dir/tls/cert.pem`.
    pub(crate) fn qchat(addr: SocketAddr, data_dir: &Path, count: usize) -> anyhow::Result<Self> {
        let cert = CertificateDer::from_pem_file(data_dir.join("tls/cert.pem"))
            .context("reading qchatd's certificate")?;
        let config = baseline::client_config(&cert, qchat_protocol::ALPN)?;
        let eps = (0..count.max(1)).map(|_| endpoint(&config)).collect::<anyhow::Result<_>>()?;
        Ok(Self { eps, next: AtomicUsize::new(0), addr })
    }

    /// `count` endpoints speaking the baseline ALPN to `addr`, trusting `cert`.
    pub(crate) fn baseline(
        addr: SocketAddr,
        cert: &CertificateDer<'static>,
        count: usize,
    ) -> anyhow::Result<Self> {
        let config = baseline::client_config(cert, baseline::ALPN)?;
        let eps = (0..count.max(1)).map(|_| endpoint(&config)).collect::<anyhow::Result<_>>()?;
        Ok(Self { eps, next: AtomicUsize::new(0), addr })
    }

    /// Connects (round-robin over the sockets) and opens the stream.
    pub(crate) async fn connect(&self) -> anyhow::Result<Link> {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.eps.len();
        let connecting = self.eps[i].connect(self.addr, "localhost")?;
        let conn = tokio::time::timeout(SETUP_STEP, connecting)
            .await
            .context("handshake timed out")?
            .context("handshake")?;
        let (send, recv) = conn.open_bi().await.context("opening the stream")?;
        Ok(Link { conn, send, reader: frames(recv) })
    }

    /// Closes every connection on these sockets.
    pub(crate) fn close(&self) {
        for ep in &self.eps {
            ep.close(0u32.into(), b"bench done");
        }
    }
}

/// A client endpoint on an ephemeral loopback port with qchatd's socket
/// buffers: a fan-out burst to the connections sharing a socket must not
/// overflow the kernel's 208 KiB default.
fn endpoint(config: &quinn::ClientConfig) -> anyhow::Result<quinn::Endpoint> {
    let socket = baseline::udp_socket(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let runtime = quinn::default_runtime().context("no async runtime")?;
    let mut ep = quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime)?;
    ep.set_default_client_config(config.clone());
    Ok(ep)
}

/// One connection and its stream.
pub(crate) struct Link {
    /// The QUIC connection.
    pub(crate) conn: Connection,
    /// Writing half of the stream.
    pub(crate) send: SendStream,
    /// Reading half, framed.
    pub(crate) reader: FrameReader<RecvStream>,
}

impl Link {
    /// Writes one frame.
    pub(crate) async fn write(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        write_frame(&mut self.send, payload).await
    }

    /// qchat: sends request `id` and returns its `ok` payload, skipping events.
    pub(crate) async fn call(&mut self, id: u64, op: &str, fields: Value) -> anyhow::Result<Value> {
        let mut req = json!({"id": id, "op": op});
        if let (Some(obj), Value::Object(extra)) = (req.as_object_mut(), fields) {
            obj.extend(extra);
        }
        self.write(&serde_json::to_vec(&req)?).await?;
        let wait = async {
            loop {
                let Some(frame) = self.reader.next().await? else {
                    bail!("stream ended before the reply to {op}");
                };
                let v: Value = serde_json::from_slice(&frame)?;
                if v["re"].as_u64() == Some(id) {
                    return match v.get("ok") {
                        Some(ok) => Ok(ok.clone()),
                        None => bail!("{op} refused: {v}"),
                    };
                }
            }
        };
        tokio::time::timeout(SETUP_STEP, wait).await.with_context(|| format!("{op} timed out"))?
    }
}

/// The frames of `recv` (both sides of a comparison read the same way).
pub(crate) fn frames(recv: RecvStream) -> FrameReader<RecvStream> {
    FrameReader::with_capacity(recv, 4096)
}

/// Writes `payload` as one frame.
pub(crate) async fn write_frame(send: &mut SendStream, payload: &[u8]) -> anyhow::Result<()> {
    let mut buf = BytesMut::with_capacity(payload.len() + 4);
    encode_frame(payload, &mut buf)?;
    send.write_all(&buf).await?;
    Ok(())
}
