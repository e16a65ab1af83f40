//! qchatd, the qchat server: QUIC endpoint, sessions, rooms hub, storage.
//!
//! # Layout
//! - [`server`]: endpoint, transport limits, accept loop, shutdown ([`Server`]).
//! - `session`: one task per connection — control stream, login deadline,
//!   reader, writer, close codes.
//! - `cmd`: one handler per operation, grouped by domain.
//! - `hub`: room subscriptions, presence, fan-out of pre-serialized frames.
//! - `outbound`: a connection's bounded queue (`lagged` instead of blocking).
//! - `committer`: the single message writer with group commit.
//! - `auth`: argon2id, session tokens, login rate limits.
//! - `db`: all SQL (SQLite via sqlx), migrations embedded.
//! - [`tls`]: certificate loading and generation.
//! - [`config`]: the configuration shape and file loading.
//! - [`admin`]: operator commands on the database.

pub mod admin;
mod auth;
mod cmd;
mod committer;
pub mod config;
mod db;
mod error;
mod hub;
mod outbound;
mod server;
mod session;
pub mod tls;

pub use config::Config;
pub use db::{DB_FILE, Durability, MIGRATOR};
pub use server::{Server, StartError};
