//! Server certificate: loaded from PEM files, or self-signed with rcgen on
//! first start and kept in the data directory so the fingerprint clients
//! pinned stays valid across restarts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

/// Why the certificate could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Reading or writing a PEM file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A PEM file holds no usable certificate or key.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// rcgen failed.
    #[error("generating certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the certificate or key.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A certificate chain with its key.
#[derive(Debug)]
pub struct Identity {
    /// End-entity first.
    pub chain: Vec<CertificateDer<'static>>,
    /// Private key.
    pub key: PrivateKeyDer<'static>,
}

impl Identity {
    /// SHA-256 of the end-entity certificate's DER, lower-case hex: what
    /// clients pin.
    pub fn fingerprint(&self) -> String {
        self.chain.first().map(|c| fingerprint(c)).unwrap_or_default()
    }
}

/// Lower-case hex SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Sha256::digest(der))
}

/// File names of the generated certificate inside the data directory.
pub const GENERATED_CERT: &str = "tls/cert.pem";
/// File name of the generated key inside the data directory.
pub const GENERATED_KEY: &str = "tls/key.pem";

/// Loads `cert`/`key` when given, else the generated pair in `data_dir`,
/// generating it (with `names` as subject alternative names) when absent.
///
/// # Errors
/// [`TlsError`] when files cannot be read or written or hold garbage.
pub fn load_or_generate(
    data_dir: &Path,
    files: Option<(&Path, &Path)>,
    names: &[String],
) -> Result<Identity, TlsError> {
    if let Some((cert, key)) = files {
        return load(cert, key);
    }
    let cert = data_dir.join(GENERATED_CERT);
    let key = data_dir.join(GENERATED_KEY);
    if cert.exists() && key.exists() {
        return load(&cert, &key);
    }
    let generated = rcgen::generate_simple_self_signed(names.to_vec())?;
    let dir = cert.parent().unwrap_or(data_dir);
    std::fs::create_dir_all(dir).map_err(|source| TlsError::Io { path: dir.to_owned(), source })?;
    write_private(&key, generated.signing_key.serialize_pem().as_bytes())?;
    std::fs::write(&cert, generated.cert.pem())
        .map_err(|source| TlsError::Io { path: cert.clone(), source })?;
    tracing::info!(cert = %cert.display(), "generated a self-signed certificate");
    load(&cert, &key)
}

fn load(cert: &Path, key: &Path) -> Result<Identity, TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| TlsError::Pem { path: cert.to_owned(), what: e.to_string() })?
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem { path: cert.to_owned(), what: e.to_string() })?;
    if chain.is_empty() {
        return Err(TlsError::Pem { path: cert.to_owned(), what: "no certificate found".into() });
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| TlsError::Pem { path: key.to_owned(), what: e.to_string() })?;
    Ok(Identity { chain, key })
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), TlsError> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|source| TlsError::Io { path: path.to_owned(), source })
}

/// rustls server configuration for QUIC with our ALPN.
///
/// # Errors
/// When rustls refuses the key or certificate.
pub fn server_config(id: &Identity) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_single_cert(id.chain.clone(), id.key.clone_key())?;
    cfg.alpn_protocols = vec![qchat_protocol::ALPN.to_vec()];
    cfg.max_early_data_size = 0;
    Ok(Arc::new(cfg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_once_then_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = load_or_generate(dir.path(), None, &["localhost".into()]).expect("generate");
        let b = load_or_generate(dir.path(), None, &["localhost".into()]).expect("load");
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
        server_config(&b).expect("rustls accepts it");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(GENERATED_KEY))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn garbage_files_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cert = dir.path().join("c.pem");
        std::fs::write(&cert, "not pem").expect("write");
        let err = load_or_generate(dir.path(), Some((&cert, &cert)), &[]).expect_err("garbage");
        assert!(err.to_string().contains("c.pem"), "{err}");
    }
}
