//! qchat client library: connect to a `qchatd` over QUIC, log in, make typed
//! requests, and receive an ordered, gap-free event stream that survives
//! reconnects. Terminal and UI code lives only in [`tui`], behind the cargo
//! feature `tui` (on by default); without it the library has none.
//!
//! ```no_run
//! # async fn demo() -> Result<(), qchat_client::ClientError> {
//! use qchat_client::{Auth, Client, ClientConfig, ClientEvent, Trust};
//! let trust = Trust::Fingerprint("…64 hex digits printed by qchatd…".into());
//! let cfg = ClientConfig::new("chat.example.org:4433", "acme", "ann",
//!     Auth::Password("correct horse".into()), trust);
//! let (client, mut events) = Client::connect(cfg).await?;
//! client.join_room("general").await?;
//! client.send("general", "hello").await?;
//! while let Some(ClientEvent::Message(m)) = events.recv().await {
//!     println!("{} #{} {}: {}", m.room, m.seq, m.sender, m.body);
//! }
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - `config`: [`ClientConfig`], [`Auth`], [`Trust`], [`default_known_hosts_path`].
//! - `trust` (+ `trust/known_hosts`): [`fingerprint`], the pinning
//!   certificate verifier, the known-hosts file, the quinn client config.
//! - `connection`: one QUIC connection; its control stream's writer and
//!   reader tasks; requests matched to replies by id.
//! - `sequencer`: exactly-once, in-order message delivery per room (pure).
//! - `outbox`: unacknowledged sends with their `client_msg_id` (pure).
//! - `state`: the state the handles, the supervisor and the transfers
//!   share (the connection to use, token, outbox, sequencer), [`ConnState`],
//!   and the one wait for a ready connection every request goes through.
//! - `events`: [`ClientEvent`] and the [`Events`] stream.
//! - `supervisor`: the task that runs the event pipeline and reconnects,
//!   resumes, syncs and resends.
//! - `transfer` (+ `transfer/{upload,download,progress,router}`): file
//!   uploads and downloads on their own streams, each with a progress
//!   [`tokio::sync::watch`] channel read through one [`TransferHandle`]
//!   ([`UploadHandle`], [`DownloadHandle`]), [`TransferError`]; the router
//!   that hands server-opened streams and upload events to them.
//! - `client`: the public handle [`Client`]; [`Client::upload`] and
//!   [`Client::download`] start transfers; `client/account`: the caller's
//!   profile, password and sessions, and [`Client::search`].
//! - `probe`: [`probe`] — `hello` before logging in ([`ServerInfo`]: is
//!   registration open in a tenant?).
//! - `error`: [`ClientError`]; `mutex`: the crate's one `lock` of a std
//!   mutex.
//! - [`tui`] (feature `tui`): the terminal UI `qchat` starts without a
//!   subcommand, a thin layer over [`Client`]; [`tui::HeadlessUi`] runs it
//!   on a test backend for benchmarks.

mod client;
mod config;
mod connection;
mod dial;
mod error;
mod events;
mod mutex;
mod outbox;
mod probe;
mod sequencer;
mod state;
mod supervisor;
mod transfer;
mod trust;
#[cfg(feature = "tui")]
pub mod tui;

pub use client::Client;
pub use config::{Auth, ClientConfig, Trust, default_known_hosts_path};
pub use error::ClientError;
pub use events::{ClientEvent, Events};
pub use probe::{ServerInfo, probe};
pub use state::ConnState;
pub use transfer::{
    DownloadHandle, DownloadProgress, DownloadState, Downloaded, FileChunks, TransferError,
    TransferHandle, TransferProgress, UploadHandle, UploadProgress, UploadState, Uploaded,
};
pub use trust::fingerprint;

/// Wire types that appear in this crate's API, re-exported so users need not
/// depend on `qchat-protocol` directly.
pub use qchat_protocol::{
    Change, ChangeKind, ErrorBody, ErrorCode, FileInfo, MemberEvent, MemberInfo, Message,
    MessageKind, MessagesOk, PasswdOk, Presence, ProfileOk, Reaction, ReadEvent, RemovedReason,
    ReplyTo, Role, RoomInfo, RoomKind, RoomRemoved, SearchHit, SearchOk, SearchReq, SendOk,
    SessionInfo, ThreadOk, Tombstone, Typing,
};
