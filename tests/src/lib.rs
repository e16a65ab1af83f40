//! Harness for qchat's end-to-end tests: starts the real `qchatd` binary on
//! 127.0.0.1 with a random port and a temporary data directory, runs its
//! admin commands, and speaks the raw protocol ([`RawConn`]) where a test
//! needs to send what the client library never would.
//!
//! Every server runs on the backend `QCHAT_TEST_BACKEND` names (SQLite by
//! default, or a fresh PostgreSQL database per server: see [`Backend`]), so
//! the same suites run on both.
//!
//! The binaries are the ones `cargo test --workspace` builds into the target
//! directory (`service` and `client` have integration tests, which makes
//! cargo build their binaries). `QCHATD_BIN` / `QCHAT_BIN` override the paths.

mod backend;
mod cluster;
mod raw;
mod rng;
mod server;

pub use backend::{Backend, DEFAULT_PG_URL, ScratchDb, pg_admin_url, with_database};
pub use cluster::{Cluster, Nats};
pub use raw::{RawConn, RawOpts, handshake};
pub use rng::Rng;
pub use server::{TestServer, bin_path};

/// Bound on any single wait in a test.
pub const STEP: std::time::Duration = std::time::Duration::from_secs(20);

/// Awaits `f` with the [`STEP`] bound, failing the test on timeout.
///
/// # Panics
/// When `f` takes longer than [`STEP`].
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(STEP, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {STEP:?}: {what}"),
    }
}
