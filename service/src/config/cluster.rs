//! `[cluster]`: running as one node of several that share one PostgreSQL
//! database, one NATS server and one file store.

use std::path::PathBuf;

use serde::Deserialize;

/// Cluster mode. With `nats_url` empty (the default) the server is a single
/// node and needs neither NATS nor a shared store.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Cluster {
    /// The NATS server the nodes fan out through, e.g.
    /// `nats://127.0.0.1:4222`; empty for a single node. Needs a
    /// PostgreSQL `database_url`.
    pub nats_url: String,
    /// This node's name in logs and in what it tells the other nodes
    /// (default: the host name and process id).
    pub node_name: String,
    /// How often a node tells the others it is alive, in milliseconds; a
    /// node silent for five of these is taken for dead and its users for
    /// offline.
    pub heartbeat_ms: u64,
    /// The directory of file contents and partial uploads that every node
    /// mounts (default: `files/` and `uploads/` in `data_dir`, which only
    /// suits a single node).
    pub files_dir: Option<PathBuf>,
    /// The first byte of every QUIC connection ID this node issues, for a
    /// UDP load balancer that routes packets to nodes by connection ID
    /// (give each node its own); unset: random IDs.
    pub cid_prefix: Option<u8>,
}

impl Default for Cluster {
    fn default() -> Self {
        Self {
            nats_url: String::new(),
            node_name: String::new(),
            heartbeat_ms: 1000,
            files_dir: None,
            cid_prefix: None,
        }
    }
}

impl Cluster {
    /// Whether this node is one of a cluster.
    pub fn enabled(&self) -> bool {
        !self.nats_url.is_empty()
    }
}
