//! Server configuration: built-in defaults, then a TOML file, then
//! environment (`QCHAT_*`), then flags. The binary merges the last two with
//! clap; this module holds the shape, the defaults and the file loading.
//! Unknown keys are refused so a typo cannot silently fall back to a default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::db::Durability;

/// Everything `qchatd serve` needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory for the database and the generated certificate.
    pub data_dir: PathBuf,
    /// UDP address to listen on.
    pub listen: SocketAddr,
    /// DNS names (and IPs) put in a generated certificate.
    pub public_names: Vec<String>,
    /// PEM certificate chain; with `tls_key`, replaces the generated certificate.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// SQLite `synchronous` level.
    pub durability: Durability,
    /// Limits that protect the server on a public host.
    pub limits: Limits,
}

/// Bounds on what clients may use.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Connections closed after this long without packets.
    pub idle_timeout_secs: u64,
    /// A connection must log in within this long after the handshake.
    pub login_timeout_secs: u64,
    /// Concurrent connections, overall.
    pub max_connections: usize,
    /// Frames queued per connection before events are dropped (`lagged`).
    pub outbound_queue: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            listen: SocketAddr::from(([0, 0, 0, 0], qchat_protocol::DEFAULT_PORT)),
            public_names: vec!["localhost".into()],
            tls_cert: None,
            tls_key: None,
            durability: Durability::Full,
            limits: Limits::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30,
            login_timeout_secs: 10,
            max_connections: 10_000,
            outbound_queue: 1024,
        }
    }
}

impl Limits {
    /// Idle timeout as a duration.
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    /// Login deadline as a duration.
    pub fn login_timeout(&self) -> Duration {
        Duration::from_secs(self.login_timeout_secs.max(1))
    }
}

/// Why the configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Reading the file failed.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid (syntax, unknown key, bad value); the message
    /// names the key.
    #[error("{path}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// toml's explanation, naming the key.
        message: String,
    },
}

impl Config {
    /// Reads a TOML file over the defaults.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file and the offending key.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Self::from_toml(&text)
            .map_err(|message| ConfigError::Invalid { path: path.to_owned(), message })
    }

    /// Parses TOML text over the defaults.
    ///
    /// # Errors
    /// The parser's message, which names the key.
    pub fn from_toml(text: &str) -> Result<Self, String> {
        toml::from_str(text).map_err(|e| e.to_string().trim().to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_toml("").expect("empty is fine");
        assert_eq!(c.listen.port(), 4433);
        assert_eq!(c.durability, Durability::Full);
        let c = Config::from_toml(
            "listen = \"127.0.0.1:5000\"\ndurability = \"normal\"\n[limits]\nidle_timeout_secs = 5\n",
        )
        .expect("valid");
        assert_eq!(c.listen.port(), 5000);
        assert_eq!(c.durability, Durability::Normal);
        assert_eq!(c.limits.idle_timeout_secs, 5);
        assert_eq!(c.limits.login_timeout_secs, 10);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = Config::from_toml("lisen = \"x\"").expect_err("typo");
        assert!(e.contains("lisen"), "{e}");
        let e = Config::from_toml("[limits]\nmax_connections = -1").expect_err("negative");
        assert!(e.contains("max_connections"), "{e}");
        let e = Config::from_toml("durability = \"sometimes\"").expect_err("bad enum");
        assert!(e.contains("durability"), "{e}");
    }
}
