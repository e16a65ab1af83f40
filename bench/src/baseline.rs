//! Bare quinn endpoints for the baselines: the same transport settings as
//! `qchatd` (taken from [`qchat_service::transport_config`] with the default
//! configuration), the same 4 MiB UDP socket buffers and a self-signed
//! certificate, with no qchat logic at all.
//! Each scenario's baseline server lives in its own scenario module and runs
//! in its own process, as `qchatd` does ([`BaselineProcess`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::AsyncReadExt as _;
use tokio::process::Command;

use crate::worker::WorkerProcess;

/// Flags of a baseline server worker.
#[derive(Debug, clap::Args)]
pub(crate) struct ServerArgs {
    /// Where to write the server certificate (DER).
    #[arg(long)]
    pub(crate) cert_out: PathBuf,
}

/// A baseline server in its own process (`qchat-bench worker NAME
/// --cert-out PATH`), killed on drop.
pub(crate) struct BaselineProcess {
    process: WorkerProcess,
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    /// Its certificate.
    pub(crate) cert: CertificateDer<'static>,
    _dir: tempfile::TempDir,
}

impl BaselineProcess {
    /// Starts `qchat-bench worker <worker>` and waits for its address (the
    /// first line it prints, from [`announce`]).
    pub(crate) async fn start(worker: &str) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let cert_path = dir.path().join("cert.der");
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["worker", worker, "--cert-out"]).arg(&cert_path);
        let mut process = WorkerProcess::spawn(&mut cmd, "baseline server")?;
        let line = tokio::time::timeout(Duration::from_secs(20), process.line())
            .await
            .context("baseline server start timed out")??;
        let addr: SocketAddr = line
            .strip_prefix("listening on ")
            .context("unexpected first line from the baseline server")?
            .parse()?;
        let cert = CertificateDer::from(std::fs::read(&cert_path)?);
        Ok(Self { process, addr, cert, _dir: dir })
    }

    /// The process id.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// Closes its standard input and waits (bounded) for it to exit.
    pub(crate) async fn stop(self) {
        self.process.stop(Duration::from_secs(10)).await;
    }
}

/// In a baseline server worker: writes the certificate where the parent
/// asked and prints the address the parent waits for.
pub(crate) fn announce(
    endpoint: &quinn::Endpoint,
    cert: &CertificateDer<'_>,
    cert_out: &Path,
) -> anyhow::Result<()> {
    std::fs::write(cert_out, cert.as_ref())
        .with_context(|| format!("writing {}", cert_out.display()))?;
    println!("listening on {}", endpoint.local_addr()?);
    Ok(())
}

/// In a baseline server worker: resolves when the parent closes our
/// standard input (the signal to stop).
pub(crate) async fn stdin_closed() {
    let mut sink = Vec::new();
    let _ = tokio::io::stdin().read_to_end(&mut sink).await;
}

/// ALPN for baseline connections (not qchat's, so nothing mistakes one for the other).
pub(crate) const ALPN: &[u8] = b"qchat-bench";

/// A server endpoint on `addr` with qchatd's transport settings; returns the
/// endpoint and the certificate clients must trust.
pub(crate) fn server(
    addr: SocketAddr,
) -> anyhow::Result<(quinn::Endpoint, CertificateDer<'static>)> {
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let cert = CertificateDer::from(key.cert.der().to_vec());
    let pkcs8 = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], pkcs8)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls)?));
    let transport = qchat_service::transport_config(&qchat_service::Config::default())
        .context("qchatd transport settings")?;
    config.transport_config(Arc::new(transport));
    let runtime = quinn::default_runtime().context("no async runtime")?;
    let endpoint = quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(config),
        udp_socket(addr)?,
        runtime,
    )?;
    Ok((endpoint, cert))
}

/// Socket buffer asked for in each direction: what qchatd and the client
/// library ask for their own sockets (Linux caps the request at
/// `net.core.rmem_max`/`wmem_max`).
const SOCKET_BUFFER: usize = 4 * 1024 * 1024;

/// A UDP socket on `addr` with [`SOCKET_BUFFER`] each way.
pub(crate) fn udp_socket(addr: SocketAddr) -> anyhow::Result<std::net::UdpSocket> {
    let socket = std::net::UdpSocket::bind(addr)?;
    let state = quinn::udp::UdpSocketState::new((&socket).into())?;
    state.set_recv_buffer_size((&socket).into(), SOCKET_BUFFER)?;
    state.set_send_buffer_size((&socket).into(), SOCKET_BUFFER)?;
    Ok(socket)
}

/// A client endpoint on an ephemeral loopback port with [`SOCKET_BUFFER`]
/// that trusts `cert` only.
pub(crate) fn client(cert: &CertificateDer<'static>) -> anyhow::Result<quinn::Endpoint> {
    let socket = udp_socket(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let runtime = quinn::default_runtime().context("no async runtime")?;
    let mut endpoint =
        quinn::Endpoint::new(quinn::EndpointConfig::default(), None, socket, runtime)?;
    endpoint.set_default_client_config(client_config(cert, ALPN)?);
    Ok(endpoint)
}

/// A TLS 1.3 client configuration that trusts `cert` only and offers `alpn`.
pub(crate) fn client_config(
    cert: &CertificateDer<'static>,
    alpn: &[u8],
) -> anyhow::Result<quinn::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![alpn.to_vec()];
    Ok(quinn::ClientConfig::new(Arc::new(QuicClientConfig::try_from(tls)?)))
}
