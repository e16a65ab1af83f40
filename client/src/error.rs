//! The one error type of the client library, and the mapping of QUIC close
//! codes to sentences a person can act on.

use qchat_protocol::{CloseCode, ErrorBody, ErrorCode};

/// Why a client operation failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The server answered the request with an `err` reply.
    #[error("server refused: {0}")]
    Server(ErrorBody),
    /// The server's certificate is not pinned and the trust settings do not
    /// allow pinning a new one. Show `fingerprint` to the user, let them check
    /// it with the operator, then connect again with it pinned.
    #[error("unknown server certificate sha256 {fingerprint} at {server}")]
    UnknownHost {
        /// The address that presented it (one of the configured ones).
        server: String,
        /// SHA-256 of the presented certificate, 64 lower-case hex digits.
        fingerprint: String,
    },
    /// The server presented a different certificate than the one pinned for
    /// it. The client never connects in that case.
    #[error(
        "server certificate changed at {server}: expected sha256 {expected}, got {got}; \
         if the operator replaced it, update the pin"
    )]
    HostChanged {
        /// The address that presented it (one of the configured ones).
        server: String,
        /// The pinned fingerprint.
        expected: String,
        /// The fingerprint the server presented.
        got: String,
    },
    /// The connection could not be established (resolution, handshake,
    /// certificate chain).
    #[error("connecting to {server}: {reason}")]
    Connect {
        /// The server as configured (`host:port`).
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The connection was lost before the reply to a request arrived; the
    /// request may or may not have taken effect.
    #[error("connection lost: {0}")]
    Disconnected(String),
    /// The client is closed (after `quit`, `logout`, being dropped, or a
    /// failure it cannot recover from) and takes no more requests.
    #[error("client closed: {0}")]
    Closed(String),
    /// No usable connection came back within the time allowed.
    #[error("timed out waiting for the server")]
    Timeout,
    /// Reading or writing a local file (the known-hosts file) failed.
    #[error("{context}: {message}")]
    Io {
        /// What was being done, e.g. "writing /home/ann/.local/share/qchat/known_hosts".
        context: String,
        /// The operating system's explanation.
        message: String,
    },
    /// The server broke the protocol (unparsable frame, unexpected reply).
    #[error("protocol error: {0}")]
    Protocol(String),
    /// The configuration is unusable (bad address, bad fingerprint, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// The server's error code, when the failure is an `err` reply.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server(body) => Some(body.code),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, err: &std::io::Error) -> Self {
        Self::Io { context: context.into(), message: err.to_string() }
    }

    /// Whether reconnecting can cure this error. Certificate problems, bad
    /// credentials and configuration errors cannot.
    pub(crate) fn is_transient(&self) -> bool {
        match self {
            Self::Server(body) => matches!(
                body.code,
                ErrorCode::Unavailable | ErrorCode::RateLimited | ErrorCode::Internal
            ),
            Self::Connect { .. } | Self::Disconnected(_) | Self::Timeout | Self::Protocol(_) => {
                true
            }
            Self::UnknownHost { .. }
            | Self::HostChanged { .. }
            | Self::Closed(_)
            | Self::Io { .. }
            | Self::Config(_) => false,
        }
    }
}

/// A sentence for why a QUIC connection ended, from quinn's error.
pub(crate) fn describe_close(err: &quinn::ConnectionError) -> String {
    match err {
        quinn::ConnectionError::ApplicationClosed(close) => {
            let reason = String::from_utf8_lossy(&close.reason);
            let what = match CloseCode::from_code(close.error_code.into_inner()) {
                Some(CloseCode::Normal) => "closed by the server",
                Some(CloseCode::ProtocolError) => "server reports a protocol error",
                Some(CloseCode::FrameTooLarge) => "server reports a frame too large",
                Some(CloseCode::LoginTimeout) => "log-in took too long",
                Some(CloseCode::Shutdown) => "server shutting down",
                Some(CloseCode::ServerBusy) => "server busy",
                Some(CloseCode::Internal) => "server fault",
                Some(CloseCode::Revoked) => "session revoked",
                None => "closed by the server with an unknown code",
            };
            if reason.is_empty() || reason == what {
                what.to_owned()
            } else {
                format!("{what} ({reason})")
            }
        }
        quinn::ConnectionError::LocallyClosed => "closed locally".to_owned(),
        quinn::ConnectionError::TimedOut => "server not responding (idle timeout)".to_owned(),
        quinn::ConnectionError::Reset => "connection reset by the server".to_owned(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_only_for_server_errors() {
        let e = ClientError::Server(ErrorBody::new(ErrorCode::NotFound, "no such room"));
        assert_eq!(e.code(), Some(ErrorCode::NotFound));
        assert_eq!(e.to_string(), "server refused: not_found: no such room");
        assert_eq!(ClientError::Timeout.code(), None);
    }

    #[test]
    fn close_reasons_are_readable() {
        let close = quinn::ConnectionError::ApplicationClosed(quinn::ApplicationClose {
            error_code: quinn::VarInt::from_u32(CloseCode::Shutdown.code()),
            reason: bytes::Bytes::from_static(b""),
        });
        assert_eq!(describe_close(&close), "server shutting down");
    }

    #[test]
    fn transient_classification() {
        assert!(ClientError::Timeout.is_transient());
        assert!(
            !ClientError::UnknownHost { server: "h:1".into(), fingerprint: "ab".into() }
                .is_transient()
        );
        let unauth = ClientError::Server(ErrorBody::new(ErrorCode::Unauthorized, "no"));
        assert!(!unauth.is_transient());
    }
}
