//! What a client needs to know to connect: server, identity, credentials and
//! how to trust the server's certificate.

use std::net::IpAddr;
use std::path::PathBuf;

/// How the client proves who it is.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    /// A password: used for `login` (or `register`), and again after a
    /// reconnect if the session token is refused.
    Password(String),
    /// A session token from an earlier log-in, used with `resume`.
    Token(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Password(_) => f.write_str("Password(<redacted>)"),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// How the server's certificate is trusted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trust {
    /// Accept exactly the certificate whose SHA-256 is this (64 hex digits).
    Fingerprint(String),
    /// Trust on first use, recorded in a known-hosts file (one
    /// `ADDR:PORT HEX` line per server).
    KnownHosts {
        /// The known-hosts file (see [`crate::default_known_hosts_path`]).
        path: PathBuf,
        /// Pin (and record) an unknown server's certificate instead of
        /// failing with [`crate::ClientError::UnknownHost`].
        accept_new: bool,
    },
    /// Verify the chain against the bundled Mozilla root certificates (for
    /// servers with a certificate from a public CA).
    SystemRoots,
}

/// Everything [`crate::Client::connect`] needs.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Server address as `host:port`; the host may be a name or an IP.
    /// Several addresses of one service (the nodes of a cluster) are
    /// separated by commas, `a:4433,b:4433`: the client connects to the
    /// first that answers and, when a connection drops, tries them in turn
    /// from the one after it ([`ClientConfig::servers`]).
    pub server: String,
    /// Name sent as TLS SNI and checked by [`Trust::SystemRoots`]. Default:
    /// the host part of `server` if it is a DNS name, else `localhost`.
    pub server_name: Option<String>,
    /// Tenant (organisation) to log in to.
    pub tenant: String,
    /// User name.
    pub user: String,
    /// Password or session token.
    pub auth: Auth,
    /// Create the account with `register` on the first connection instead of
    /// logging in (the tenant must allow self-registration).
    pub register: bool,
    /// How to trust the server's certificate.
    pub trust: Trust,
    /// Supervise the connection and reconnect when it drops (default true).
    /// When false, a dropped connection closes the client.
    pub reconnect: bool,
}

impl ClientConfig {
    /// A configuration that logs in (no registration), reconnects, and
    /// derives the TLS server name from `server`.
    pub fn new(
        server: impl Into<String>,
        tenant: impl Into<String>,
        user: impl Into<String>,
        auth: Auth,
        trust: Trust,
    ) -> Self {
        Self {
            server: server.into(),
            server_name: None,
            tenant: tenant.into(),
            user: user.into(),
            auth,
            register: false,
            trust,
            reconnect: true,
        }
    }

    /// The addresses in `server`, in order: split at commas, trimmed, empty
    /// pieces dropped. Each is dialled, pinned and reported on its own.
    pub fn servers(&self) -> Vec<String> {
        split_servers(&self.server)
    }

    /// The TLS server name to present to `server` (one of
    /// [`ClientConfig::servers`]): the configured one, else the host part
    /// of `server` when it is a DNS name, else `localhost` (IP literals make
    /// poor SNI values and pinned certificates ignore names anyway).
    pub(crate) fn effective_server_name(&self, server: &str) -> String {
        if let Some(name) = &self.server_name {
            return name.clone();
        }
        let host = host_part(server);
        if host.is_empty() || host.parse::<IpAddr>().is_ok() {
            "localhost".to_owned()
        } else {
            host.to_owned()
        }
    }
}

/// The addresses of a comma-separated list (`--server a:4433,b:4433`, the
/// same in `QCHAT_SERVER`), trimmed, without empty pieces.
pub(crate) fn split_servers(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The host part of `host:port`, `[v6]:port` or a bare host.
fn host_part(server: &str) -> &str {
    if let Some(rest) = server.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    match server.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((host, _)) if !host.contains(':') => host,
        Some(_) => server,
        None => server,
    }
}

/// Where the known-hosts file lives by default: the platform's data directory
/// for qchat (e.g. `~/.local/share/qchat/known_hosts` on Linux), or `None`
/// when the platform has no home directory.
pub fn default_known_hosts_path() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "qchat").map(|d| d.data_dir().join("known_hosts"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(server: &str) -> ClientConfig {
        ClientConfig::new(server, "t", "u", Auth::Password("pw".into()), Trust::SystemRoots)
    }

    #[test]
    fn defaults() {
        let c = cfg("chat.example.org:4433");
        assert!(!c.register);
        assert!(c.reconnect);
        assert_eq!(c.server_name, None);
    }

    fn name(server: &str) -> String {
        cfg(server).effective_server_name(server)
    }

    #[test]
    fn server_name_from_host() {
        assert_eq!(name("chat.example.org:4433"), "chat.example.org");
        assert_eq!(name("127.0.0.1:4433"), "localhost");
        assert_eq!(name("[::1]:4433"), "localhost");
        assert_eq!(name("::1"), "localhost");
        let mut named = cfg("127.0.0.1:1");
        named.server_name = Some("qchat.test".into());
        assert_eq!(named.effective_server_name("127.0.0.1:1"), "qchat.test");
    }

    #[test]
    fn several_servers() {
        let c = cfg(" a.example:4433, 10.0.0.2:4433,,[::1]:4433 ");
        assert_eq!(c.servers(), ["a.example:4433", "10.0.0.2:4433", "[::1]:4433"]);
        assert_eq!(c.effective_server_name("a.example:4433"), "a.example");
        assert_eq!(c.effective_server_name("10.0.0.2:4433"), "localhost");
        assert_eq!(cfg("h:1").servers(), ["h:1"]);
        assert!(cfg(" , ").servers().is_empty());
    }

    #[test]
    fn auth_debug_redacts() {
        let dbg = format!("{:?}", Auth::Password("hunter22".into()));
        assert!(!dbg.contains("hunter22"));
        let dbg = format!("{:?}", cfg("a:1"));
        assert!(!dbg.contains("pw\""), "{dbg}");
    }
}
