//! Server configuration: built-in defaults, then a TOML file, then
//! environment (`QCHAT_*`), then flags — each key in that order of precedence.
//! This module holds the shape, the defaults, the file loading and the
//! validation; [`Overrides`] is the clap side (environment and flags) that the
//! binary flattens into `qchatd serve`. Unknown keys are refused so a typo
//! cannot silently fall back to a default, and every error names the key.

mod cluster;
mod files;
mod overrides;
mod quotas;

pub use cluster::Cluster;
pub use files::FileLimits;
pub use overrides::Overrides;
pub use quotas::Quotas;

/// Most messages the writer commits in one transaction unless
/// `max_commit_batch` says otherwise.
pub(crate) const DEFAULT_MAX_BATCH: usize = 256;
/// Queue length in front of the writer (`committer`); senders wait when it
/// is full. Also the largest useful batch: a batch never holds more than
/// was queued, so `max_commit_batch` is at most this.
pub(crate) const COMMIT_QUEUE: usize = 4096;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::db::{DatabaseUrl, Durability};

/// Everything `qchatd serve` needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Directory for the database and the generated certificate.
    pub data_dir: PathBuf,
    /// Where the state lives: empty (the default) for `qchat.db` in
    /// `data_dir`, `sqlite://PATH`, or `postgres://USER@HOST:PORT/DB` for a
    /// PostgreSQL server (cluster mode).
    pub database_url: String,
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
    /// Most messages the writer commits in one transaction (1 to 4096; 1 is
    /// one transaction, and one fsync, per message).
    pub max_commit_batch: usize,
    /// Log line format on stderr.
    pub log_format: LogFormat,
    /// Log filter (`info`, `debug`, `qchat_service=debug,info`, ...);
    /// `RUST_LOG`, when set, wins.
    pub log_level: String,
    /// Local TCP address for Prometheus `/metrics` and `/health`; off when absent.
    pub metrics_listen: Option<SocketAddr>,
    /// Limits that protect the server on a public host.
    pub limits: Limits,
    /// File-transfer limits.
    pub files: FileLimits,
    /// What users may create, per user and per tenant.
    pub quotas: Quotas,
    /// Cluster mode: NATS, the node's name, the shared file store.
    pub cluster: Cluster,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Longest session token lifetime accepted: 365 days.
const MAX_SESSION_TTL_SECS: u64 = 365 * 24 * 3600;

/// Bounds on what clients may use.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Connections closed after this long without packets.
    pub idle_timeout_secs: u64,
    /// A connection must log in within this long after its first packet
    /// (so the handshake counts).
    pub login_timeout_secs: u64,
    /// Concurrent connections, overall.
    pub max_connections: usize,
    /// Concurrent connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Above this many handshakes in progress, new addresses must prove they
    /// own their address (QUIC Retry) before the server keeps any state.
    pub retry_above_handshakes: usize,
    /// Frames queued per connection before events are dropped (`lagged`).
    pub outbound_queue: usize,
    /// Failed logins allowed per address per window.
    pub login_failures: u32,
    /// The failed-login window.
    pub login_failure_window_secs: u64,
    /// Password checks (log-in, register) queued or running at once,
    /// server-wide; more are refused with `unavailable`.
    pub max_password_checks: usize,
    /// QUIC keep-alive sent by the server (capped at half the idle timeout);
    /// 0 turns it off.
    pub keep_alive_secs: u64,
    /// Concurrent unidirectional streams a client may open.
    pub max_uni_streams: u32,
    /// Bytes a client may have in flight on one stream.
    pub stream_receive_window: u32,
    /// Bytes a client may have in flight on the whole connection.
    pub receive_window: u32,
    /// Bytes the server keeps unacknowledged per connection.
    pub send_window: u64,
    /// How long a session token from `login`/`register` is accepted by
    /// `resume` (1 s to 365 days).
    pub session_ttl_secs: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            database_url: String::new(),
            listen: SocketAddr::from(([0, 0, 0, 0], qchat_protocol::DEFAULT_PORT)),
            public_names: vec!["localhost".into()],
            tls_cert: None,
            tls_key: None,
            durability: Durability::Full,
            max_commit_batch: DEFAULT_MAX_BATCH,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            metrics_listen: None,
            limits: Limits::default(),
            files: FileLimits::default(),
            quotas: Quotas::default(),
            cluster: Cluster::default(),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 30,
            login_timeout_secs: 10,
            max_connections: 10_000,
            max_connections_per_ip: 32,
            retry_above_handshakes: 64,
            outbound_queue: 1024,
            login_failures: 10,
            login_failure_window_secs: 60,
            max_password_checks: crate::auth::MAX_PASSWORD_CHECKS,
            keep_alive_secs: 15,
            // One stream per file being uploaded at once.
            max_uni_streams: 16,
            // A frame is at most 1 MiB; room for one in flight plus some.
            stream_receive_window: 2 * 1024 * 1024,
            receive_window: 4 * 1024 * 1024,
            send_window: 8 * 1024 * 1024,
            session_ttl_secs: 30 * 24 * 3600,
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

    /// Keep-alive interval, if on; never at or above the idle timeout (it
    /// would not keep anything alive), so at most half of it.
    pub fn keep_alive(&self) -> Option<Duration> {
        let cap = self.idle_timeout() / 2;
        (self.keep_alive_secs > 0).then(|| Duration::from_secs(self.keep_alive_secs).min(cap))
    }

    /// Session token lifetime as a duration.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session_ttl_secs)
    }

    /// Failed-login window as a duration.
    pub fn login_failure_window(&self) -> Duration {
        Duration::from_secs(self.login_failure_window_secs)
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
    /// A value is out of range or inconsistent with another.
    #[error("{key}: {message}")]
    Value {
        /// The key, as written in the file.
        key: &'static str,
        /// What is wrong.
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

    /// The configuration `qchatd serve` runs with: defaults, then `file`,
    /// then `overrides` (environment and flags, merged by clap), validated.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file or the key.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, ConfigError> {
        let mut config = match file {
            Some(path) => Self::from_file(path)?,
            None => Self::default(),
        };
        overrides.apply(&mut config);
        config.validate()?;
        Ok(config)
    }

    /// The database `database_url` names (SQLite in `data_dir` when empty).
    ///
    /// # Errors
    /// A message naming the URL forms accepted.
    pub fn database(&self) -> Result<DatabaseUrl, String> {
        DatabaseUrl::parse(&self.database_url, &self.data_dir)
    }

    /// Checks ranges and combinations a type cannot express.
    ///
    /// # Errors
    /// [`ConfigError::Value`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key, message: &str| Err(ConfigError::Value { key, message: message.into() });
        let l = &self.limits;
        match self.database() {
            Err(message) => return Err(ConfigError::Value { key: "database_url", message }),
            Ok(DatabaseUrl::Sqlite(_)) if self.cluster.enabled() => {
                return bad(
                    "nats_url",
                    "cluster mode needs a PostgreSQL database_url that every node shares",
                );
            }
            Ok(_) => {}
        }
        if self.cluster.enabled() && !self.cluster.nats_url.contains("://") {
            return bad("nats_url", "give a URL such as nats://127.0.0.1:4222");
        }
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert", "tls_cert and tls_key go together");
        }
        if self.public_names.is_empty() || self.public_names.iter().any(String::is_empty) {
            return bad("public_names", "give at least one non-empty name");
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            return bad("log_level", "not a tracing filter (try info or debug)");
        }
        if !(1..=COMMIT_QUEUE).contains(&self.max_commit_batch) {
            return bad("max_commit_batch", "must be 1 to 4096");
        }
        if l.max_connections == 0 {
            return bad("max_connections", "must be at least 1");
        }
        if l.max_connections_per_ip == 0 {
            return bad("max_connections_per_ip", "must be at least 1");
        }
        if l.outbound_queue == 0 {
            return bad("outbound_queue", "must be at least 1");
        }
        if l.login_failures == 0 {
            return bad("login_failures", "must be at least 1");
        }
        if l.max_password_checks == 0 {
            return bad("max_password_checks", "must be at least 1");
        }
        if l.idle_timeout_secs == 0 || l.idle_timeout_secs > 3600 {
            return bad("idle_timeout_secs", "must be 1 to 3600");
        }
        if !(1..=MAX_SESSION_TTL_SECS).contains(&l.session_ttl_secs) {
            return bad("session_ttl_secs", "must be 1 to 31536000 (365 days)");
        }
        let frame = u32::try_from(qchat_protocol::MAX_FRAME_LEN + 4).unwrap_or(u32::MAX);
        if l.stream_receive_window < frame {
            return bad("stream_receive_window", "must hold one full frame (1 MiB + 4)");
        }
        if l.receive_window < l.stream_receive_window {
            return bad("receive_window", "must be at least stream_receive_window");
        }
        Ok(())
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

    /// deploy/qchatd.toml documents every key "with its default": it must
    /// parse, and its limits and quotas must be the defaults.
    #[test]
    fn the_example_file_shows_the_defaults() {
        let c = Config::from_toml(include_str!("../../deploy/qchatd.toml")).expect("parses");
        c.validate().expect("valid");
        assert_eq!(format!("{:?}", c.limits), format!("{:?}", Limits::default()));
        assert_eq!(format!("{:?}", c.quotas), format!("{:?}", Quotas::default()));
        assert_eq!(c.max_commit_batch, Config::default().max_commit_batch);
        assert_eq!(format!("{:?}", c.cluster), format!("{:?}", Cluster::default()));
    }

    #[test]
    fn cluster_mode_needs_postgres_and_a_nats_url() {
        let c =
            Config::from_toml("[cluster]\nnats_url = \"nats://127.0.0.1:4222\"\n").expect("parses");
        let e = c.validate().expect_err("SQLite cannot be shared").to_string();
        assert!(e.contains("nats_url") && e.contains("PostgreSQL"), "{e}");
        let c = Config::from_toml(
            "database_url = \"postgres://q@db/q\"\n[cluster]\nnats_url = \"127.0.0.1:4222\"\n",
        )
        .expect("parses");
        assert!(c.validate().expect_err("not a URL").to_string().contains("nats://"));
        let c = Config::from_toml(
            "database_url = \"postgres://q@db/q\"\n[cluster]\nnats_url = \"nats://n:4222\"\ncid_prefix = 7\n",
        )
        .expect("parses");
        c.validate().expect("valid");
        assert!(c.cluster.enabled());
        assert_eq!(c.cluster.cid_prefix, Some(7));
        assert!(!Config::default().cluster.enabled(), "a single node by default");
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = Config::from_toml("lisen = \"x\"").expect_err("typo");
        assert!(e.contains("lisen"), "{e}");
        let e = Config::from_toml("[limits]\nmax_connections = -1").expect_err("negative");
        assert!(e.contains("max_connections"), "{e}");
        let e = Config::from_toml("durability = \"sometimes\"").expect_err("bad enum");
        assert!(e.contains("durability"), "{e}");
        let e = Config::from_toml("[limits]\nmax_conections = 1").expect_err("nested typo");
        assert!(e.contains("max_conections"), "{e}");
    }

    #[test]
    fn validation_names_the_key() {
        let mut c = Config::default();
        c.validate().expect("defaults are valid");
        c.limits.idle_timeout_secs = 0;
        let e = c.validate().expect_err("no idle timeout").to_string();
        assert!(e.starts_with("idle_timeout_secs"), "{e}");
        for ttl in [0, MAX_SESSION_TTL_SECS + 1] {
            let mut c = Config::default();
            c.limits.session_ttl_secs = ttl;
            let e = c.validate().expect_err("session lifetime out of range").to_string();
            assert!(e.starts_with("session_ttl_secs"), "{e}");
        }
        let c = Config::from_toml("[limits]\nsession_ttl_secs = 5").expect("valid");
        assert_eq!(c.limits.session_ttl(), Duration::from_secs(5));
        c.validate().expect("a few seconds is allowed (tests use it)");
        let c = Config { tls_key: Some("k.pem".into()), ..Config::default() };
        assert!(c.validate().expect_err("key alone").to_string().starts_with("tls_cert"));
        let mut c = Config::default();
        c.limits.stream_receive_window = 1000;
        assert!(c.validate().expect_err("small").to_string().starts_with("stream_receive_window"));
        for bad in [0, 4097] {
            let c = Config { max_commit_batch: bad, ..Config::default() };
            let e = c.validate().expect_err("batch out of range").to_string();
            assert!(e.starts_with("max_commit_batch"), "{e}");
        }
        let c = Config::from_toml("max_commit_batch = 1").expect("valid");
        assert_eq!(c.max_commit_batch, 1);
        c.validate().expect("one transaction per message is allowed");
    }
}
