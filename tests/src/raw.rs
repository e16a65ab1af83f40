//! A minimal protocol client written against `docs/PROTOCOL.md` only — no
//! client library — so tests can send malformed and hostile input, and so the
//! spec is exercised the way a client in another language would use it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use bytes::{Bytes, BytesMut};
use qchat_protocol::{ALPN, FrameReader, encode_frame};
use quinn::{Connection, RecvStream, SendStream};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use serde_json::{Value, json};

/// One raw connection with its control stream.
pub struct RawConn {
    /// The QUIC connection.
    pub conn: Connection,
    _endpoint: quinn::Endpoint,
    send: SendStream,
    frames: FrameReader<RecvStream>,
    next_id: u64,
    /// Events received while waiting for replies, oldest first.
    pub events: Vec<Value>,
}

/// How a raw connection is made, for tests that play hostile clients.
#[derive(Debug, Clone, Copy)]
pub struct RawOpts {
    /// Local address the client binds. Linux routes all of 127.0.0.0/8 to
    /// the loopback interface, so tests play several client addresses (and
    /// so hit per-address limits apart) with 127.0.0.2, 127.0.0.3, ...
    pub local_ip: IpAddr,
    /// Receive window the client grants per stream; small values make a
    /// client that reads its control stream slowly. `None`: quinn's default.
    pub stream_receive_window: Option<u32>,
}

impl Default for RawOpts {
    fn default() -> Self {
        Self { local_ip: IpAddr::V4(Ipv4Addr::LOCALHOST), stream_receive_window: None }
    }
}

impl RawOpts {
    /// Default options from another loopback address.
    pub fn from_ip(local_ip: IpAddr) -> Self {
        Self { local_ip, ..Self::default() }
    }
}

/// Only the QUIC handshake (no control stream), trusting the certificate in
/// `data_dir/tls/cert.pem`. The endpoint must outlive the connection.
///
/// # Errors
/// When the handshake fails, e.g. because the server refused the connection.
pub async fn handshake(
    addr: SocketAddr,
    data_dir: &Path,
    opts: &RawOpts,
) -> anyhow::Result<(quinn::Endpoint, Connection)> {
    let cert =
        CertificateDer::from_pem_file(data_dir.join("tls/cert.pem")).context("reading cert")?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut endpoint = quinn::Endpoint::client(SocketAddr::new(opts.local_ip, 0))?;
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    if let Some(window) = opts.stream_receive_window {
        let mut transport = quinn::TransportConfig::default();
        transport.stream_receive_window(quinn::VarInt::from_u32(window));
        transport.receive_window(quinn::VarInt::from_u32(window.saturating_mul(2)));
        config.transport_config(Arc::new(transport));
    }
    endpoint.set_default_client_config(config);
    let conn = endpoint.connect(addr, "localhost")?.await.context("handshake")?;
    Ok((endpoint, conn))
}

impl RawConn {
    /// Connects, trusting the certificate in `data_dir/tls/cert.pem`.
    ///
    /// # Errors
    /// When the handshake fails.
    pub async fn connect(addr: SocketAddr, data_dir: &Path) -> anyhow::Result<Self> {
        Self::connect_with(addr, data_dir, &RawOpts::default()).await
    }

    /// Connects with `opts` (another source address, a small receive window).
    ///
    /// # Errors
    /// When the handshake fails.
    pub async fn connect_with(
        addr: SocketAddr,
        data_dir: &Path,
        opts: &RawOpts,
    ) -> anyhow::Result<Self> {
        let (endpoint, conn) = handshake(addr, data_dir, opts).await?;
        let (send, recv) = conn.open_bi().await?;
        Ok(Self::from_parts(endpoint, conn, send, recv))
    }

    /// Wraps a control stream opened on a connection made with [`handshake`].
    pub fn from_parts(
        endpoint: quinn::Endpoint,
        conn: Connection,
        send: SendStream,
        recv: RecvStream,
    ) -> Self {
        Self {
            conn,
            _endpoint: endpoint,
            send,
            frames: FrameReader::with_capacity(recv, 1024),
            next_id: 1,
            events: Vec::new(),
        }
    }

    /// Writes raw bytes on the control stream.
    ///
    /// # Errors
    /// When the stream is gone.
    pub async fn write_raw(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        self.send.write_all(bytes).await?;
        Ok(())
    }

    /// Writes one frame with `payload`.
    ///
    /// # Errors
    /// When the stream is gone.
    pub async fn write_frame(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        let mut buf = BytesMut::new();
        encode_frame(payload, &mut buf)?;
        self.write_raw(&buf).await
    }

    /// Reads the next frame's payload, exactly as it came.
    ///
    /// # Errors
    /// When the stream ends or breaks the frame rules.
    pub async fn read_payload(&mut self) -> anyhow::Result<Bytes> {
        match self.frames.next().await? {
            Some(frame) => Ok(frame),
            None => bail!("control stream finished"),
        }
    }

    /// Reads the next frame as JSON.
    ///
    /// # Errors
    /// When the stream ends or carries garbage.
    pub async fn read(&mut self) -> anyhow::Result<Value> {
        Ok(serde_json::from_slice::<Value>(&self.read_payload().await?)?)
    }

    /// Reads until the reply with `re == id` (or `null` when `id` is None),
    /// keeping events aside.
    ///
    /// # Errors
    /// When the stream ends first.
    pub async fn reply(&mut self, id: Option<u64>) -> anyhow::Result<Value> {
        loop {
            let v = self.read().await?;
            if v.get("ev").is_some() {
                self.events.push(v);
            } else if v["re"].as_u64() == id {
                return Ok(v);
            }
        }
    }

    /// Sends `{"id": next, "op": op, ...fields}` and returns the reply.
    ///
    /// # Errors
    /// When the stream fails.
    pub async fn call(&mut self, op: &str, fields: Value) -> anyhow::Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut req = json!({"id": id, "op": op});
        if let (Some(obj), Value::Object(extra)) = (req.as_object_mut(), fields) {
            obj.extend(extra);
        }
        self.write_frame(&serde_json::to_vec(&req)?).await?;
        self.reply(Some(id)).await
    }

    /// `call` that must succeed; returns the `ok` payload.
    ///
    /// # Errors
    /// When the reply is an error.
    pub async fn ok(&mut self, op: &str, fields: Value) -> anyhow::Result<Value> {
        let r = self.call(op, fields).await?;
        match r.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => bail!("{op} failed: {r}"),
        }
    }

    /// Logs in with a password.
    ///
    /// # Errors
    /// When the login is refused.
    pub async fn login(
        &mut self,
        tenant: &str,
        user: &str,
        password: &str,
    ) -> anyhow::Result<Value> {
        self.ok("login", json!({"tenant": tenant, "user": user, "password": password})).await
    }

    /// Waits for the next event (first any kept aside).
    ///
    /// # Errors
    /// When the stream ends first.
    pub async fn event(&mut self) -> anyhow::Result<Value> {
        if !self.events.is_empty() {
            return Ok(self.events.remove(0));
        }
        loop {
            let v = self.read().await?;
            if v.get("ev").is_some() {
                return Ok(v);
            }
        }
    }

    /// Raw bytes for tests that need them (e.g. an unframed payload).
    pub fn frame(payload: &[u8]) -> Bytes {
        let mut buf = BytesMut::new();
        // Test helper: callers pass small payloads.
        let _ = encode_frame(payload, &mut buf);
        buf.freeze()
    }
}
