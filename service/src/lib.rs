//! qchatd, the qchat server: QUIC endpoint, sessions, rooms hub, storage.
//!
//! # Layout
//! - [`server`]: endpoint, transport limits, accept loop, shutdown ([`Server`]).
//! - `state`: what every connection shares (`Shared`) and who a connection
//!   is logged in as (`Login`).
//! - `session`: one task per connection — control stream, login deadline,
//!   reader, writer, close codes.
//! - `access`: who may see and do what in which room — the one place the
//!   service decides it.
//! - `changes`: room changes (membership, roles, settings) as the writer
//!   applies them.
//! - `cmd`: one handler per operation, grouped by domain; each gets the
//!   shared state, the caller's login and only the connection parts it uses.
//! - `hub`: room subscriptions, presence, fan-out of pre-serialized frames.
//! - `outbound`: a connection's bounded queue (`lagged` instead of blocking).
//! - `paging`: list replies bounded by encoded size (`more` and a cursor).
//! - `quota`: per-user and per-tenant limits on what users create.
//! - `search`: search queries, cursors and excerpts (the index is the
//!   database's, migration 0008).
//! - `committer`: the single message writer with group commit.
//! - `transfer`: upload and download streams, quotas; `store`: files on disk.
//! - `auth`: argon2id, session tokens, login rate limits.
//! - `db`: all SQL (SQLite via sqlx), migrations embedded.
//! - [`tls`]: certificate loading and generation.
//! - [`config`]: the configuration shape and file loading.
//! - [`admin`]: operator commands on the database.
//! - [`healthcheck`]: the `qchatd healthcheck` QUIC ping.
//! - `admission`: connection caps (overall, per address) and QUIC Retry.
//! - `metrics`: Prometheus counters and the local `/metrics` + `/health` port.
//! - [`Reloader`]: certificate reload on SIGHUP ([`ReloadError`]).

mod access;
pub mod admin;
mod admission;
mod auth;
mod bus;
mod changes;
mod cid;
mod cmd;
mod committer;
pub mod config;
mod db;
mod error;
pub mod healthcheck;
mod hub;
mod metrics;
mod outbound;
mod paging;
mod quota;
mod reload;
mod search;
mod server;
mod session;
mod state;
mod store;
pub mod tls;
mod transfer;

pub use config::Config;
pub use db::{
    Backend, DB_FILE, DatabaseUrl, Durability, HISTORY_SQL, INSERT_MESSAGE_SQL, MIGRATOR,
    PG_MIGRATOR, SEARCH_POSTGRES_SQL, SEARCH_SQLITE_SQL,
};
pub use reload::{ReloadError, Reloader};
pub use server::{Server, StartError, transport_config};
