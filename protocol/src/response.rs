//! Server → client: replies to requests and unsolicited events.

use serde::{Deserialize, Serialize};

use crate::error::ErrorCode as Code;
use crate::error::{ErrorBody, ErrorCode};
use crate::files::FileInfo;
use crate::types::{Lagged, MemberEvent, MemberInfo, Message, Presence, RoomInfo, RoomRemoved};

/// The reply to one request: `{"re": id, "ok": {...}}` or
/// `{"re": id, "err": {"code": ..., "message": ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The request's `id`; `null` when the request was so malformed that no
    /// id could be read from it.
    pub re: Option<u64>,
    /// Outcome.
    #[serde(flatten)]
    pub reply: Reply,
}

/// Outcome of a request. The `ok` payload's shape depends on the operation
/// (see the `*Ok` types); it is kept as JSON here so one type covers all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reply {
    /// Success, with the operation's payload (`{}` when it has none).
    #[serde(rename = "ok")]
    Ok(serde_json::Value),
    /// Failure.
    #[serde(rename = "err")]
    Err(ErrorBody),
}

impl Response {
    /// A success reply carrying `payload`.
    ///
    /// # Errors
    /// Fails only if `payload` cannot be represented as JSON.
    pub fn ok<T: Serialize>(re: u64, payload: &T) -> Result<Self, serde_json::Error> {
        Ok(Self { re: Some(re), reply: Reply::Ok(serde_json::to_value(payload)?) })
    }

    /// A success reply with an empty `{}` payload.
    pub fn empty(re: u64) -> Self {
        Self { re: Some(re), reply: Reply::Ok(serde_json::Value::Object(Default::default())) }
    }

    /// A failure reply.
    pub fn err(re: Option<u64>, code: ErrorCode, message: impl Into<String>) -> Self {
        Self { re, reply: Reply::Err(ErrorBody::new(code, message)) }
    }
}

/// Unsolicited server message: `{"ev": "...", ...fields}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "ev")]
pub enum Event {
    /// A message was committed in a room you are in.
    #[serde(rename = "message")]
    Message(Message),
    /// A user who shares a room with you came online or went offline.
    #[serde(rename = "presence")]
    Presence(Presence),
    /// Someone joined or left a room you are in.
    #[serde(rename = "member")]
    Member(MemberEvent),
    /// Events for a room were dropped; `sync` it.
    #[serde(rename = "lagged")]
    Lagged(Lagged),
    /// An upload from this connection was stored and offered to its room.
    #[serde(rename = "upload.done")]
    UploadDone(UploadDone),
    /// An upload from this connection failed. For `bad_request` (size or
    /// hash mismatch) and `quota_exceeded` the partial bytes and the upload
    /// are gone; for other codes they are kept and the upload can resume.
    #[serde(rename = "upload.failed")]
    UploadFailed(UploadFailed),
    /// A room appeared in your list or joined it on another connection
    /// (you were invited, someone opened a direct message with you).
    #[serde(rename = "room")]
    Room(RoomEvent),
    /// A room left your list: you left it elsewhere, were kicked or
    /// banned, or it was deleted. Its events stop.
    #[serde(rename = "room.removed")]
    RoomRemoved(RoomRemoved),
    /// The user's read marker of a room moved on another of their
    /// connections.
    #[serde(rename = "read")]
    Read(crate::ReadEvent),
    /// Someone is typing in a room you are in.
    #[serde(rename = "typing")]
    Typing(crate::Typing),
}

/// `room` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomEvent {
    /// The room as the receiving user sees it.
    pub room: RoomInfo,
}

/// `upload.done` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadDone {
    /// The upload.
    pub upload_id: String,
    /// The stored file.
    pub file: FileInfo,
    /// Seq of the file message in the room.
    pub seq: u64,
}

/// `upload.failed` event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadFailed {
    /// The upload.
    pub upload_id: String,
    /// Why, as an error code.
    pub code: Code,
    /// Human-readable explanation.
    pub message: String,
}

/// Anything the server sends on the control stream.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerMsg {
    /// Reply to a request.
    Response(Response),
    /// Unsolicited event (boxed: a message event is several times the
    /// size of a reply).
    Event(Box<Event>),
}

impl ServerMsg {
    /// Parses one frame payload from the server: an object with `ev` is an
    /// event, anything else a response.
    ///
    /// # Errors
    /// Fails when the payload is not a valid response or event.
    pub fn parse(payload: &[u8]) -> Result<Self, serde_json::Error> {
        #[derive(Deserialize)]
        struct Probe {
            ev: Option<serde::de::IgnoredAny>,
        }
        let probe: Probe = serde_json::from_slice(payload)?;
        if probe.ev.is_some() {
            serde_json::from_slice(payload).map(|e| Self::Event(Box::new(e)))
        } else {
            serde_json::from_slice(payload).map(Self::Response)
        }
    }
}

/// `hello` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloOk {
    /// Server name and version.
    pub server: String,
    /// Protocol version the server speaks.
    pub version: u32,
    /// Largest frame payload the server accepts.
    pub max_frame: u64,
    /// Only when `hello` named a `tenant`: whether `register` is open in
    /// it. `false` also when no such tenant exists (as `register` would be
    /// refused). Absent from servers that predate it: then unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_registration: Option<bool>,
}

/// `register`, `login` and `resume` reply.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginOk {
    /// Tenant name.
    pub tenant: String,
    /// User name.
    pub user: String,
    /// Session token for `resume` (43 characters, base64url). Keep it secret.
    pub token: String,
}

impl std::fmt::Debug for LoginOk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginOk")
            .field("tenant", &self.tenant)
            .field("user", &self.user)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// `rooms` reply: one page of the tenant's rooms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomsOk {
    /// Rooms sorted by name, from the first after the request's `after`.
    pub rooms: Vec<RoomInfo>,
    /// `true` when more rooms follow: ask again with `after` = the last
    /// name of this page. Absent from servers that sent every room at
    /// once.
    #[serde(default)]
    pub more: bool,
}

/// `room.create` / `room.join` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomOk {
    /// The room, as seen by the caller after the operation.
    pub room: RoomInfo,
}

/// `members` reply: one page of a room's members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersOk {
    /// Room name.
    pub room: String,
    /// Members sorted by name, from the first after the request's `after`.
    pub members: Vec<MemberInfo>,
    /// `true` when more members follow: ask again with `after` = the last
    /// user name of this page. Absent from servers that sent every member
    /// at once.
    #[serde(default)]
    pub more: bool,
}

/// Reply of the room-changing operations (`room.invite`, `room.kick`,
/// `room.ban`, `room.unban`, `room.role`, `room.topic`, `room.rename`,
/// `room.private`, `room.archive`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeOk {
    /// Seq of the `system` message recording the change; absent when
    /// nothing changed (the state asked for held already).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

/// `send` reply, sent only after the message is committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendOk {
    /// The message's seq in the room.
    pub seq: u64,
    /// Commit time, milliseconds since the Unix epoch.
    pub ts: i64,
    /// `true` when this `client_msg_id` had been committed before: nothing new
    /// was stored and `seq` is the original one.
    pub duplicate: bool,
    /// Present when the body says `@room`: whether it mentioned everyone.
    /// `false` when the room has more members than anyone may `@room`
    /// ([`crate::MAX_ROOM_MENTION_MEMBERS`]) and the sender is not its
    /// owner, a moderator or a tenant admin: then `@room` was plain text. Absent on a
    /// duplicate and from servers that predate it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_mention: Option<bool>,
}

/// `history` and `sync` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessagesOk {
    /// Room name.
    pub room: String,
    /// Messages in ascending seq order.
    pub messages: Vec<Message>,
    /// `true` when more messages lie beyond this page in the direction
    /// asked: there were more than `limit`, or the next one would not have
    /// fit in the frame.
    pub more: bool,
}

/// `thread` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadOk {
    /// Room name.
    pub room: String,
    /// The message replied to.
    pub message: Message,
    /// One page of its replies, in ascending seq order.
    pub messages: Vec<Message>,
    /// `true` when more replies follow: ask again with `after_seq` = the
    /// last seq of this page.
    pub more: bool,
}

/// `upload.begin` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadBeginOk {
    /// Names the upload on its stream and in `upload.status`.
    pub upload_id: String,
    /// Bytes the server already holds: send from here.
    pub offset: u64,
    /// `true` when nothing needs sending: the tenant already stores this
    /// content, and the file message was recorded (`file` and `seq` are set).
    pub complete: bool,
    /// The stored file, when `complete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<FileInfo>,
    /// Seq of the file message, when `complete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// `true` for a hash-later begin whose size and head match content the
    /// tenant stores: no upload was created (`upload_id` is empty); begin
    /// again with the whole file's `hash`, so content already stored is
    /// not sent again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hash_required: bool,
}

/// `upload.status` reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadStatusOk {
    /// The upload.
    pub upload_id: String,
    /// Bytes held: resume from here.
    pub offset: u64,
    /// Declared size.
    pub size: u64,
}

/// `file.get` reply; the bytes follow on a server-opened unidirectional stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileGetOk {
    /// The file.
    pub file: FileInfo,
    /// Where the stream's bytes start.
    pub offset: u64,
}
