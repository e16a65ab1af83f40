//! The environment and flag layer of the configuration: one optional field
//! per configuration key, each readable from `--key-name` or `QCHAT_KEY_NAME`
//! (clap gives the flag precedence over the variable). Whatever is set here
//! replaces what the file said.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::{Config, LogFormat};
use crate::db::Durability;

/// Environment variables and flags for `qchatd serve`, every key optional.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// Data directory [default: data].
    #[arg(long, env = "QCHAT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database: sqlite://PATH or postgres://USER@HOST:PORT/DB [default: qchat.db in the data directory].
    #[arg(long, env = "QCHAT_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Cluster mode: the NATS server the nodes share, e.g. nats://127.0.0.1:4222 [default: none, a single node].
    #[arg(long, env = "QCHAT_NATS_URL")]
    pub nats_url: Option<String>,
    /// Cluster mode: this node's name in logs [default: host name and process id].
    #[arg(long, env = "QCHAT_NODE_NAME")]
    pub node_name: Option<String>,
    /// Cluster mode: the file store every node mounts [default: the data directory].
    #[arg(long, env = "QCHAT_FILES_DIR")]
    pub files_dir: Option<PathBuf>,
    /// The first byte of every QUIC connection ID, 0 to 255, for a balancer that routes by ID [default: random IDs].
    #[arg(long, env = "QCHAT_CID_PREFIX")]
    pub cid_prefix: Option<u8>,
    /// UDP address to listen on [default: 0.0.0.0:4433].
    #[arg(long, env = "QCHAT_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Names for the generated certificate, comma-separated [default: localhost].
    #[arg(long, env = "QCHAT_PUBLIC_NAMES", value_delimiter = ',')]
    pub public_names: Option<Vec<String>>,
    /// PEM certificate chain (with --tls-key) instead of the generated one.
    #[arg(long, env = "QCHAT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "QCHAT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// SQLite durability: full (survives power loss) or normal.
    #[arg(long, env = "QCHAT_DURABILITY")]
    pub durability: Option<DurabilityArg>,
    /// Most messages committed in one transaction, 1 to 4096 [default: 256].
    #[arg(long, env = "QCHAT_MAX_COMMIT_BATCH")]
    pub max_commit_batch: Option<usize>,
    /// Log format on stderr [default: text].
    #[arg(long, env = "QCHAT_LOG_FORMAT")]
    pub log_format: Option<LogFormat>,
    /// Log filter [default: info]; RUST_LOG wins when set.
    #[arg(long, env = "QCHAT_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Local TCP address for /metrics and /health [default: off].
    #[arg(long, env = "QCHAT_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Close connections idle this many seconds [default: 30].
    #[arg(long, env = "QCHAT_IDLE_TIMEOUT_SECS")]
    pub idle_timeout_secs: Option<u64>,
    /// Seconds a new connection has to log in [default: 10].
    #[arg(long, env = "QCHAT_LOGIN_TIMEOUT_SECS")]
    pub login_timeout_secs: Option<u64>,
    /// Concurrent connections overall [default: 10000].
    #[arg(long, env = "QCHAT_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Concurrent connections per IP address [default: 32].
    #[arg(long, env = "QCHAT_MAX_CONNECTIONS_PER_IP")]
    pub max_connections_per_ip: Option<usize>,
    /// Handshakes in progress above which new addresses get a QUIC Retry [default: 64].
    #[arg(long, env = "QCHAT_RETRY_ABOVE_HANDSHAKES")]
    pub retry_above_handshakes: Option<usize>,
    /// Frames queued per connection before events are dropped [default: 1024].
    #[arg(long, env = "QCHAT_OUTBOUND_QUEUE")]
    pub outbound_queue: Option<usize>,
    /// Failed logins allowed per address per window [default: 10].
    #[arg(long, env = "QCHAT_LOGIN_FAILURES")]
    pub login_failures: Option<u32>,
    /// The failed-login window in seconds [default: 60].
    #[arg(long, env = "QCHAT_LOGIN_FAILURE_WINDOW_SECS")]
    pub login_failure_window_secs: Option<u64>,
    /// Password checks queued or running at once, server-wide [default: 256].
    #[arg(long, env = "QCHAT_MAX_PASSWORD_CHECKS")]
    pub max_password_checks: Option<usize>,
    /// Server QUIC keep-alive in seconds, 0 = off [default: 15].
    #[arg(long, env = "QCHAT_KEEP_ALIVE_SECS")]
    pub keep_alive_secs: Option<u64>,
    /// Concurrent unidirectional streams per connection.
    #[arg(long, env = "QCHAT_MAX_UNI_STREAMS")]
    pub max_uni_streams: Option<u32>,
    /// Per-stream receive window in bytes [default: 2 MiB].
    #[arg(long, env = "QCHAT_STREAM_RECEIVE_WINDOW")]
    pub stream_receive_window: Option<u32>,
    /// Per-connection receive window in bytes [default: 4 MiB].
    #[arg(long, env = "QCHAT_RECEIVE_WINDOW")]
    pub receive_window: Option<u32>,
    /// Per-connection send window in bytes [default: 8 MiB].
    #[arg(long, env = "QCHAT_SEND_WINDOW")]
    pub send_window: Option<u64>,
    /// Rooms one user may create [default: 100].
    #[arg(long, env = "QCHAT_ROOMS_PER_USER")]
    pub rooms_per_user: Option<u64>,
    /// Rooms one tenant may hold [default: 10000].
    #[arg(long, env = "QCHAT_ROOMS_PER_TENANT")]
    pub rooms_per_tenant: Option<u64>,
    /// Direct messages one user may open [default: 1000].
    #[arg(long, env = "QCHAT_DMS_PER_USER")]
    pub dms_per_user: Option<u64>,
    /// Direct messages one tenant may hold [default: 100000].
    #[arg(long, env = "QCHAT_DMS_PER_TENANT")]
    pub dms_per_tenant: Option<u64>,
    /// Invitations one user may have pending [default: 1000].
    #[arg(long, env = "QCHAT_INVITATIONS_PER_USER")]
    pub invitations_per_user: Option<u64>,
    /// Invitations pending in one tenant [default: 100000].
    #[arg(long, env = "QCHAT_INVITATIONS_PER_TENANT")]
    pub invitations_per_tenant: Option<u64>,
    /// Seconds a session token stays valid for resume [default: 2592000, 30 days].
    #[arg(long, env = "QCHAT_SESSION_TTL_SECS")]
    pub session_ttl_secs: Option<u64>,
}

/// `--durability` values (the database type stays free of clap).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum DurabilityArg {
    /// `synchronous=FULL`.
    Full,
    /// `synchronous=NORMAL`.
    Normal,
}

/// Replaces `$dst` with every `Some` value of `$src`.
macro_rules! set {
    ($($src:expr => $dst:expr),* $(,)?) => {
        $( if let Some(v) = $src.clone() { $dst = v; } )*
    };
}

impl Overrides {
    /// Writes every key given here over `config`.
    pub fn apply(&self, config: &mut Config) {
        let l = &mut config.limits;
        set! {
            self.idle_timeout_secs => l.idle_timeout_secs,
            self.login_timeout_secs => l.login_timeout_secs,
            self.max_connections => l.max_connections,
            self.max_connections_per_ip => l.max_connections_per_ip,
            self.retry_above_handshakes => l.retry_above_handshakes,
            self.outbound_queue => l.outbound_queue,
            self.login_failures => l.login_failures,
            self.login_failure_window_secs => l.login_failure_window_secs,
            self.max_password_checks => l.max_password_checks,
            self.keep_alive_secs => l.keep_alive_secs,
            self.max_uni_streams => l.max_uni_streams,
            self.stream_receive_window => l.stream_receive_window,
            self.receive_window => l.receive_window,
            self.send_window => l.send_window,
            self.session_ttl_secs => l.session_ttl_secs,
        }
        set! {
            self.rooms_per_user => config.quotas.rooms_per_user,
            self.rooms_per_tenant => config.quotas.rooms_per_tenant,
            self.dms_per_user => config.quotas.dms_per_user,
            self.dms_per_tenant => config.quotas.dms_per_tenant,
            self.invitations_per_user => config.quotas.invitations_per_user,
            self.invitations_per_tenant => config.quotas.invitations_per_tenant,
        }
        set! {
            self.data_dir => config.data_dir,
            self.database_url => config.database_url,
            self.listen => config.listen,
            self.max_commit_batch => config.max_commit_batch,
            self.public_names => config.public_names,
            self.log_format => config.log_format,
            self.log_level => config.log_level,
        }
        if let Some(d) = self.durability {
            config.durability = match d {
                DurabilityArg::Full => Durability::Full,
                DurabilityArg::Normal => Durability::Normal,
            };
        }
        if self.tls_cert.is_some() {
            config.tls_cert.clone_from(&self.tls_cert);
        }
        if self.tls_key.is_some() {
            config.tls_key.clone_from(&self.tls_key);
        }
        if self.metrics_listen.is_some() {
            config.metrics_listen = self.metrics_listen;
        }
        set! {
            self.nats_url => config.cluster.nats_url,
            self.node_name => config.cluster.node_name,
        }
        if self.cid_prefix.is_some() {
            config.cluster.cid_prefix = self.cid_prefix;
        }
        if self.files_dir.is_some() {
            config.cluster.files_dir.clone_from(&self.files_dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_keys_replace_the_file() {
        let mut c = Config::from_toml("listen = \"127.0.0.1:1\"\n[limits]\nmax_connections = 5\n")
            .expect("valid");
        let o = Overrides {
            max_connections: Some(7),
            public_names: Some(vec!["a.example".into()]),
            ..Overrides::default()
        };
        o.apply(&mut c);
        assert_eq!(c.limits.max_connections, 7);
        assert_eq!(c.listen.port(), 1, "absent overrides keep the file's value");
        assert_eq!(c.public_names, ["a.example"]);
    }
}
