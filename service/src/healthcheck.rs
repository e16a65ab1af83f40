//! `qchatd healthcheck`: connects to a running server over QUIC, sends one
//! `ping` on a control stream and waits for its reply. Container runtimes and
//! service managers call it; it must answer within a bound and say why it
//! failed in one line.
//!
//! When the data directory holds the generated certificate, the check pins
//! its fingerprint (so it proves *this* server answers); otherwise (real
//! certificate files) it accepts whatever the local server presents: it checks
//! liveness, not identity, and only ever talks to the address it is given.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use qchat_protocol::{CloseCode, FrameReader, encode_frame};
use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};

use crate::tls;

/// Why the health check failed; the message is the one line printed.
#[derive(Debug, thiserror::Error)]
pub enum HealthError {
    /// Local set-up failed (socket, TLS configuration, certificate file).
    #[error("setup: {0}")]
    Setup(String),
    /// No QUIC connection could be made.
    #[error("cannot connect to {addr}: {cause}")]
    Connect {
        /// Address tried.
        addr: SocketAddr,
        /// Why.
        cause: String,
    },
    /// Connected, but the ping was not answered properly.
    #[error("no ping reply from {addr}: {cause}")]
    Ping {
        /// Address tried.
        addr: SocketAddr,
        /// Why.
        cause: String,
    },
    /// Nothing within the time bound.
    #[error("no answer from {0} within the timeout")]
    Timeout(SocketAddr),
}

/// Pings the server at `addr`, pinning the generated certificate in
/// `data_dir` when there is one. Returns the fingerprint the server presented.
///
/// # Errors
/// [`HealthError`] saying what failed.
pub async fn check(
    addr: SocketAddr,
    data_dir: &Path,
    timeout: Duration,
) -> Result<String, HealthError> {
    let pin = pinned(data_dir)?;
    match tokio::time::timeout(timeout, ping(addr, pin)).await {
        Ok(r) => r,
        Err(_) => Err(HealthError::Timeout(addr)),
    }
}

fn pinned(data_dir: &Path) -> Result<Option<String>, HealthError> {
    let path = data_dir.join(tls::GENERATED_CERT);
    if !path.exists() {
        return Ok(None);
    }
    let cert = CertificateDer::from_pem_file(&path)
        .map_err(|e| HealthError::Setup(format!("{}: {e}", path.display())))?;
    Ok(Some(tls::fingerprint(&cert)))
}

async fn ping(addr: SocketAddr, pin: Option<String>) -> Result<String, HealthError> {
    let seen = Arc::new(std::sync::Mutex::new(None));
    let config = client_config(pin, seen.clone())?;
    let bind = if addr.is_ipv6() {
        SocketAddr::from(([0u16; 8], 0))
    } else {
        SocketAddr::from(([0, 0, 0, 0], 0))
    };
    let endpoint =
        quinn::Endpoint::client(bind).map_err(|e| HealthError::Setup(format!("socket: {e}")))?;
    let connect_err = |cause: String| HealthError::Connect { addr, cause };
    let conn = endpoint
        .connect_with(config, addr, "localhost")
        .map_err(|e| connect_err(e.to_string()))?
        .await
        .map_err(|e| connect_err(e.to_string()))?;
    let ping_err = |cause: String| HealthError::Ping { addr, cause };
    let (mut send, recv) = conn.open_bi().await.map_err(|e| ping_err(e.to_string()))?;
    let mut out = BytesMut::new();
    encode_frame(br#"{"id":1,"op":"ping"}"#, &mut out).map_err(|e| ping_err(e.to_string()))?;
    send.write_all(&out).await.map_err(|e| ping_err(e.to_string()))?;
    let reply = FrameReader::with_capacity(recv, 256)
        .next()
        .await
        .map_err(|e| ping_err(e.to_string()))?
        .ok_or_else(|| ping_err("stream ended".into()))?;
    let value: serde_json::Value =
        serde_json::from_slice(&reply).map_err(|e| ping_err(format!("bad reply: {e}")))?;
    if value.get("re").and_then(serde_json::Value::as_u64) != Some(1) || value.get("ok").is_none() {
        return Err(ping_err(format!("unexpected reply {value}")));
    }
    conn.close(CloseCode::Normal.code().into(), b"healthcheck");
    let _ = tokio::time::timeout(Duration::from_secs(1), endpoint.wait_idle()).await;
    let fingerprint = seen.lock().ok().and_then(|s| s.clone()).unwrap_or_default();
    Ok(fingerprint)
}

type Seen = Arc<std::sync::Mutex<Option<String>>>;

fn client_config(pin: Option<String>, seen: Seen) -> Result<quinn::ClientConfig, HealthError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Verifier { pin, seen, algorithms: provider.signature_verification_algorithms };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| HealthError::Setup(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![qchat_protocol::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
        .map_err(|e| HealthError::Setup(e.to_string()))?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

/// Accepts the pinned fingerprint, or anything when there is no pin; records
/// what was presented.
#[derive(Debug)]
struct Verifier {
    pin: Option<String>,
    seen: Seen,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = tls::fingerprint(end_entity);
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(presented.clone());
        }
        match &self.pin {
            Some(pin) if *pin != presented => Err(rustls::Error::General(format!(
                "server certificate {presented} is not the data directory's {pin}"
            ))),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
