//! Certificate reload (SIGHUP): builds a fresh QUIC server configuration from
//! the certificate files on disk and swaps it into the running endpoint.
//! Established connections keep the keys they negotiated; only new handshakes
//! see the new certificate.

use std::path::PathBuf;
use std::sync::Arc;

use quinn::crypto::rustls::{NoInitialCipherSuite, QuicServerConfig};
use quinn::{Endpoint, TransportConfig};

use crate::tls::{self, Identity, TlsError};

/// Why a certificate could not be made into a QUIC server configuration.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The certificate or key could not be read, made or used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The TLS configuration offers no cipher suite QUIC can start with.
    #[error("QUIC TLS config: {0}")]
    Quic(#[from] NoInitialCipherSuite),
}

/// Reloads the certificate of a running server; cheap to clone.
#[derive(Clone)]
pub struct Reloader {
    endpoint: Endpoint,
    data_dir: PathBuf,
    files: Option<(PathBuf, PathBuf)>,
    names: Vec<String>,
    transport: Arc<TransportConfig>,
}

impl Reloader {
    pub(crate) fn new(
        endpoint: Endpoint,
        data_dir: PathBuf,
        files: Option<(PathBuf, PathBuf)>,
        names: Vec<String>,
        transport: Arc<TransportConfig>,
    ) -> Self {
        Self { endpoint, data_dir, files, names, transport }
    }

    /// Reads the certificate and key again (the configured files, or the
    /// generated pair in the data directory) and serves them to new
    /// connections. Returns the new fingerprint.
    ///
    /// # Errors
    /// [`ReloadError`] when the files cannot be read or rustls refuses
    /// them; the endpoint then keeps the old certificate.
    pub fn reload(&self) -> Result<String, ReloadError> {
        let files = self.files.as_ref().map(|(c, k)| (c.as_path(), k.as_path()));
        let identity = tls::load_or_generate(&self.data_dir, files, &self.names)?;
        let config = server_config(&identity, self.transport.clone())?;
        self.endpoint.set_server_config(Some(config));
        Ok(identity.fingerprint())
    }
}

/// The quinn server configuration for `identity` with our transport limits.
pub(crate) fn server_config(
    identity: &Identity,
    transport: Arc<TransportConfig>,
) -> Result<quinn::ServerConfig, ReloadError> {
    let crypto = QuicServerConfig::try_from(tls::server_config(identity)?)?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    config.transport_config(transport);
    Ok(config)
}
