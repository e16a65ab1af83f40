//! The qchat wire protocol, version 1, without any I/O.
//!
//! # Layout
//! - [`frame`]: the length-prefixed frame codec (4-byte big-endian length, then
//!   one JSON object), with the size limit enforced before anything is allocated;
//!   with the `tokio` feature also `FrameReader`, the one async frame reader
//!   (over any tokio `AsyncRead`), which every reader of frames uses.
//! - [`request`]: what a client sends on the control stream ([`Request`], [`Op`]).
//! - [`response`]: what the server sends back ([`Response`], [`Event`],
//!   [`ServerMsg`]) and the payload types of successful replies.
//! - [`types`]: records shared by both directions (messages, rooms, members).
//! - [`files`]: file-stream headers, stream codes, the file-name sanitizer.
//! - [`error`]: stable error codes carried in replies and QUIC close codes.
//! - [`limits`]: every bound the protocol promises, in one place.
//! - `account`: the caller's profile, password and sessions.
//! - `search`: full-text search requests and hits.
//! - `mentions`: what `@user` and `@room` in a body are.
//!
//! `docs/PROTOCOL.md` is the human-readable specification of the same thing and
//! is kept in step with this crate.

mod account;
mod error;
mod files;
mod frame;
mod limits;
mod mentions;
mod request;
mod response;
mod search;
mod types;

pub use account::{
    MAX_DISPLAY_NAME_LEN, PasswdOk, PasswdReq, ProfileOk, ProfileReq, ProfileSetReq,
    SESSION_ID_LEN, SessionInfo, SessionRevokeReq, SessionsOk, SessionsReq, valid_display_name,
    valid_session_id,
};
pub use error::{CloseCode, ErrorBody, ErrorCode, quote};
pub use files::{
    DownloadHeader, FileInfo, HASH_HEX_LEN, HEAD_LEN, HeaderError, MAX_FILE_NAME_LEN,
    MAX_STREAM_HEADER_LEN, StreamCode, TRAILER_LEN, UploadHeader, decode_stream_header,
    sanitize_file_name, stream_header_len, valid_hash,
};
pub use frame::{DecodeError, EncodeError, decode_frame, encode_frame, encode_json};
pub use limits::*;
pub use mentions::{
    MAX_MENTIONS, MAX_ROOM_MENTION_MEMBERS, MENTION_EVERYONE, MENTION_ROOM, Mentions,
    mention_spans, parse_mentions,
};
pub use request::{
    ArchiveReq, Credentials, DmOpenReq, EditReq, FileGetReq, Hello, HistoryReq, MembersReq,
    MessageReq, ModerateReq, Op, ParseError, PrivateReq, Quit, ReactReq, ReadReq, RenameReq,
    Request, Resume, RoleReq, RoomCreateReq, RoomReq, RoomsReq, SendReq, SyncReq, ThreadReq,
    TopicReq, UploadBeginReq, UploadStatusReq, UserReq,
};
pub use response::{
    ChangeOk, Event, FileGetOk, HelloOk, LoginOk, MembersOk, MessagesOk, Reply, Response,
    RoomEvent, RoomOk, RoomsOk, SendOk, ServerMsg, ThreadOk, UploadBeginOk, UploadDone,
    UploadFailed, UploadStatusOk,
};
pub use search::{
    DEFAULT_SEARCH_PAGE, MAX_QUERY_LEN, MAX_QUERY_TERMS, MAX_SEARCH_PAGE, SearchHit, SearchOk,
    SearchReq,
};
pub use types::{
    Change, ChangeKind, Lagged, MemberEvent, MemberInfo, Message, MessageKind, Presence, Reaction,
    ReadEvent, RemovedReason, ReplyTo, Role, RoomInfo, RoomKind, RoomRemoved, Tombstone, Typing,
};

#[cfg(feature = "tokio")]
pub use frame::{FrameReader, ReadFrameError};

#[cfg(test)]
mod tests;
