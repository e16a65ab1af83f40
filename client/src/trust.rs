//! Trusting the server: certificate fingerprints, the pinning verifier, the
//! known-hosts file, and the quinn/rustls client configuration built on them.
//!
//! Pinning ignores names and expiry (trust on first use, like SSH) but still
//! checks that the server holds the certificate's private key: handshake
//! signatures are verified with the ring provider's algorithms.

mod known_hosts;

#[cfg(feature = "tui")]
pub(crate) use known_hosts::replace as repin;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::DigitallySignedStruct;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

use crate::config::{ClientConfig, Trust};
use crate::error::ClientError;

/// Lower-case hex SHA-256 of a DER-encoded certificate: the fingerprint
/// `qchatd serve` prints and known-hosts files record.
pub fn fingerprint(cert_der: &[u8]) -> String {
    hex::encode(Sha256::digest(cert_der))
}

/// What one connection attempt accepts.
#[derive(Debug, Clone)]
pub(crate) enum Anchor {
    /// Any of these fingerprints (a known-hosts file may list several).
    Pin(Vec<String>),
    /// Nothing pinned yet: accept any certificate (and record it) when
    /// `accept` is set, else fail with the fingerprint so a person can decide.
    Unpinned {
        /// Accept and record the presented certificate.
        accept: bool,
    },
    /// Chain verification against the bundled roots.
    Roots,
}

/// The trust decision for a first connection to `server` (one of
/// [`ClientConfig::servers`]), from the configuration and the known-hosts
/// file, where each address has pins of its own.
///
/// # Errors
/// [`ClientError::Config`] for a malformed fingerprint, [`ClientError::Io`]
/// when the known-hosts file cannot be read.
pub(crate) fn initial_anchor(cfg: &ClientConfig, server: &str) -> Result<Anchor, ClientError> {
    match &cfg.trust {
        Trust::Fingerprint(fp) => {
            let fp = fp.trim().to_ascii_lowercase();
            if !known_hosts::is_fingerprint(&fp) {
                return Err(ClientError::Config(format!(
                    "fingerprint must be 64 hex digits, got {:?}",
                    fp
                )));
            }
            Ok(Anchor::Pin(vec![fp]))
        }
        Trust::KnownHosts { path, accept_new } => {
            let pins = known_hosts::pinned(path, server)?;
            Ok(if pins.is_empty() {
                Anchor::Unpinned { accept: *accept_new }
            } else {
                Anchor::Pin(pins)
            })
        }
        Trust::SystemRoots => Ok(Anchor::Roots),
    }
}

/// After a successful handshake with `server`: records a newly accepted
/// certificate for that address in the known-hosts file when the
/// configuration asks for that.
///
/// # Errors
/// [`ClientError::Io`] when the file cannot be written.
pub(crate) fn record_if_new(
    cfg: &ClientConfig,
    server: &str,
    anchor: &Anchor,
    presented: &str,
) -> Result<(), ClientError> {
    if let (Trust::KnownHosts { path, .. }, Anchor::Unpinned { accept: true }) =
        (&cfg.trust, anchor)
    {
        known_hosts::append(path, server, presented)?;
        tracing::info!(%server, fingerprint = %presented, "pinned new server certificate");
    }
    Ok(())
}

/// Turns a failed handshake with `server` into the error a person can act
/// on, using the fingerprint the verifier saw (if it got that far).
pub(crate) fn classify_rejection(
    server: &str,
    anchor: &Anchor,
    seen: Option<&str>,
) -> Option<ClientError> {
    let got = seen?.to_owned();
    let server = server.to_owned();
    match anchor {
        Anchor::Pin(pins) if !pins.contains(&got) => {
            let expected = pins.first().cloned().unwrap_or_default();
            Some(ClientError::HostChanged { server, expected, got })
        }
        Anchor::Unpinned { accept: false } => {
            Some(ClientError::UnknownHost { server, fingerprint: got })
        }
        _ => None,
    }
}

/// Records what the server presented, for error messages and
/// [`crate::Client::server_fingerprint`].
pub(crate) type Seen = Arc<Mutex<Option<String>>>;

/// The certificate verifier for all three trust modes.
#[derive(Debug)]
struct Verifier {
    anchor: Anchor,
    roots: Option<Arc<dyn ServerCertVerifier>>,
    algorithms: WebPkiSupportedAlgorithms,
    seen: Seen,
}

impl ServerCertVerifier for Verifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = fingerprint(end_entity);
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(presented.clone());
        }
        let reject = || {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        };
        match &self.anchor {
            Anchor::Pin(pins) if pins.contains(&presented) => Ok(ServerCertVerified::assertion()),
            Anchor::Pin(_) | Anchor::Unpinned { accept: false } => reject(),
            Anchor::Unpinned { accept: true } => Ok(ServerCertVerified::assertion()),
            Anchor::Roots => match &self.roots {
                Some(roots) => roots.verify_server_cert(
                    end_entity,
                    intermediates,
                    server_name,
                    ocsp_response,
                    now,
                ),
                None => reject(),
            },
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

/// How often the client sends QUIC keep-alives (below the server's 30 s idle
/// timeout, so an idle chat stays connected).
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How long a silent connection lives before it is declared dead.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Builds the quinn client configuration for one connection attempt.
///
/// # Errors
/// [`ClientError::Config`] if rustls or quinn reject the combination (which
/// would be a bug) or the root store cannot be built.
pub(crate) fn quic_config(anchor: &Anchor, seen: Seen) -> Result<quinn::ClientConfig, ClientError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg_err = |e: &dyn std::fmt::Display| ClientError::Config(format!("TLS setup: {e}"));
    let roots: Option<Arc<dyn ServerCertVerifier>> = match anchor {
        Anchor::Roots => {
            let store = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
            let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(store),
                provider.clone(),
            )
            .build()
            .map_err(|e| cfg_err(&e))?;
            Some(verifier)
        }
        _ => None,
    };
    let verifier = Verifier {
        anchor: anchor.clone(),
        roots,
        algorithms: signature_algorithms(&provider),
        seen,
    };
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| cfg_err(&e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    tls.alpn_protocols = vec![qchat_protocol::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| cfg_err(&e))?;
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(KEEP_ALIVE));
    transport.max_idle_timeout(Some(
        quinn::IdleTimeout::try_from(IDLE_TIMEOUT).map_err(|e| cfg_err(&e))?,
    ));
    let mut config = quinn::ClientConfig::new(Arc::new(crypto));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

fn signature_algorithms(provider: &CryptoProvider) -> WebPkiSupportedAlgorithms {
    provider.signature_verification_algorithms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Auth;

    const A: &str = "aa00000000000000000000000000000000000000000000000000000000000000";
    const B: &str = "bb00000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn fingerprint_is_lower_hex_sha256() {
        assert_eq!(
            fingerprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    fn cfg(trust: Trust) -> ClientConfig {
        ClientConfig::new("h:1", "t", "u", Auth::Password("p".into()), trust)
    }

    #[test]
    fn anchors_from_config() {
        let bad = initial_anchor(&cfg(Trust::Fingerprint("xyz".into())), "h:1");
        assert!(matches!(bad, Err(ClientError::Config(_))));
        let upper =
            initial_anchor(&cfg(Trust::Fingerprint(A.to_uppercase())), "h:1").expect("valid");
        assert!(matches!(upper, Anchor::Pin(p) if p == [A]));

        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kh");
        let kh = cfg(Trust::KnownHosts { path: path.clone(), accept_new: false });
        assert!(matches!(initial_anchor(&kh, "h:1"), Ok(Anchor::Unpinned { accept: false })));
        known_hosts::append(&path, "h:1", A).expect("append");
        assert!(matches!(initial_anchor(&kh, "h:1"), Ok(Anchor::Pin(p)) if p == [A]));
        // Each address of a list has pins of its own.
        assert!(matches!(initial_anchor(&kh, "h:2"), Ok(Anchor::Unpinned { accept: false })));
        known_hosts::append(&path, "h:2", B).expect("append");
        assert!(matches!(initial_anchor(&kh, "h:2"), Ok(Anchor::Pin(p)) if p == [B]));
        assert!(matches!(initial_anchor(&kh, "h:1"), Ok(Anchor::Pin(p)) if p == [A]));
    }

    #[test]
    fn rejections_are_classified() {
        let pin = Anchor::Pin(vec![A.to_owned()]);
        assert_eq!(
            classify_rejection("h:1", &pin, Some(B)),
            Some(ClientError::HostChanged {
                server: "h:1".into(),
                expected: A.into(),
                got: B.into()
            })
        );
        assert_eq!(classify_rejection("h:1", &pin, Some(A)), None);
        assert_eq!(
            classify_rejection("h:2", &Anchor::Unpinned { accept: false }, Some(B)),
            Some(ClientError::UnknownHost { server: "h:2".into(), fingerprint: B.into() })
        );
        assert_eq!(classify_rejection("h:1", &Anchor::Unpinned { accept: false }, None), None);
    }

    #[test]
    fn accepted_new_host_is_recorded_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kh");
        let kh = cfg(Trust::KnownHosts { path: path.clone(), accept_new: true });
        let anchor = initial_anchor(&kh, "h:1").expect("anchor");
        record_if_new(&kh, "h:1", &anchor, A).expect("record");
        let anchor = initial_anchor(&kh, "h:1").expect("anchor");
        record_if_new(&kh, "h:1", &anchor, A).expect("no-op");
        assert_eq!(known_hosts::pinned(&path, "h:1").expect("read"), vec![A.to_owned()]);
    }

    #[test]
    fn quic_config_builds_for_every_anchor() {
        for anchor in
            [Anchor::Pin(vec![A.into()]), Anchor::Unpinned { accept: true }, Anchor::Roots]
        {
            quic_config(&anchor, Seen::default()).expect("builds");
        }
    }
}
