//! Client → server: requests on the control stream.

use serde::{Deserialize, Serialize};

use crate::account::{PasswdReq, ProfileReq, ProfileSetReq, SessionRevokeReq, SessionsReq};
use crate::error::{ErrorBody, ErrorCode, quote};
use crate::limits::{MAX_QUOTED_CHARS, MAX_REQUEST_DEPTH, MAX_REQUEST_ID, MAX_REQUEST_VALUES};
use crate::search::SearchReq;

/// One request frame: `{"id": n, "op": "...", ...fields}`. The server answers
/// each with exactly one [`crate::Response`] whose `re` equals `id`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Chosen by the client, echoed as `re`, 0 to [`MAX_REQUEST_ID`].
    /// Unique among in-flight requests.
    pub id: u64,
    /// The operation and its fields.
    #[serde(flatten)]
    pub op: Op,
}

/// Every operation, tagged by `op`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op")]
pub enum Op {
    /// Announce the client; optional. Reply: [`crate::HelloOk`].
    #[serde(rename = "hello")]
    Hello(Hello),
    /// Create an account (tenant must allow registration) and log in.
    /// Reply: [`crate::LoginOk`].
    #[serde(rename = "register")]
    Register(Credentials),
    /// Log in with a password. Reply: [`crate::LoginOk`].
    #[serde(rename = "login")]
    Login(Credentials),
    /// Log in with a session token from an earlier login. Reply: [`crate::LoginOk`].
    #[serde(rename = "resume")]
    Resume(Resume),
    /// Revoke this connection's session token. Reply: `{}`.
    #[serde(rename = "logout")]
    Logout,
    /// List the tenant's rooms, a page at a time. Reply: [`crate::RoomsOk`].
    #[serde(rename = "rooms")]
    Rooms(RoomsReq),
    /// Create a room (public, or private) and join it as its owner.
    /// Reply: [`crate::RoomOk`].
    #[serde(rename = "room.create")]
    RoomCreate(RoomCreateReq),
    /// Join a room. Reply: [`crate::RoomOk`].
    #[serde(rename = "room.join")]
    RoomJoin(RoomReq),
    /// Leave a room. Reply: `{}`.
    #[serde(rename = "room.leave")]
    RoomLeave(RoomReq),
    /// List a room's members with their online flag, a page at a time.
    /// Reply: [`crate::MembersOk`].
    #[serde(rename = "members")]
    Members(MembersReq),
    /// Send a text message. Reply: [`crate::SendOk`] after the commit.
    #[serde(rename = "send")]
    Send(SendReq),
    /// Page backwards through history. Reply: [`crate::MessagesOk`].
    #[serde(rename = "history")]
    History(HistoryReq),
    /// Fetch messages after a seq. Reply: [`crate::MessagesOk`].
    #[serde(rename = "sync")]
    Sync(SyncReq),
    /// Move the read marker. Reply: `{}`.
    #[serde(rename = "read")]
    Read(ReadReq),
    /// Liveness check. Reply: `{}`.
    #[serde(rename = "ping")]
    Ping,
    /// Leave gracefully: reply `{}`, then the server
    /// tells the rooms and closes the connection with code 0.
    #[serde(rename = "quit")]
    Quit(Quit),
    /// Announce a file upload to a room. Reply: [`crate::UploadBeginOk`].
    #[serde(rename = "upload.begin")]
    UploadBegin(UploadBeginReq),
    /// Ask how many bytes of an upload the server holds. Reply:
    /// [`crate::UploadStatusOk`].
    #[serde(rename = "upload.status")]
    UploadStatus(UploadStatusReq),
    /// Ask for a file; the server opens a unidirectional stream with it.
    /// Reply: [`crate::FileGetOk`].
    #[serde(rename = "file.get")]
    FileGet(FileGetReq),
    /// Open (create, or find) the direct message between the caller and
    /// these users. Reply: [`crate::RoomOk`].
    #[serde(rename = "dm.open")]
    DmOpen(DmOpenReq),
    /// Invite a user into a room (owners and moderators). Reply:
    /// [`crate::ChangeOk`].
    #[serde(rename = "room.invite")]
    RoomInvite(UserReq),
    /// Remove a member (owners and moderators). Reply: [`crate::ChangeOk`].
    #[serde(rename = "room.kick")]
    RoomKick(ModerateReq),
    /// Ban a user (owners and moderators). Reply: [`crate::ChangeOk`].
    #[serde(rename = "room.ban")]
    RoomBan(ModerateReq),
    /// Lift a ban (owners and moderators). Reply: [`crate::ChangeOk`].
    #[serde(rename = "room.unban")]
    RoomUnban(UserReq),
    /// Change a member's role (owners). Reply: [`crate::ChangeOk`].
    #[serde(rename = "room.role")]
    RoomRole(RoleReq),
    /// Set the topic (owners). Reply: [`crate::ChangeOk`].
    #[serde(rename = "room.topic")]
    RoomTopic(TopicReq),
    /// Rename the room (owners). Reply: [`crate::ChangeOk`].
    #[serde(rename = "room.rename")]
    RoomRename(RenameReq),
    /// Make the room private or public (owners). Reply: [`crate::ChangeOk`].
    #[serde(rename = "room.private")]
    RoomPrivate(PrivateReq),
    /// Archive the room (read-only) or undo it (owners). Reply:
    /// [`crate::ChangeOk`].
    #[serde(rename = "room.archive")]
    RoomArchive(ArchiveReq),
    /// Delete the room with its messages and offers (owners). Reply: `{}`.
    #[serde(rename = "room.delete")]
    RoomDelete(RoomReq),
    /// A user's profile. Reply: [`crate::ProfileOk`].
    #[serde(rename = "profile")]
    Profile(ProfileReq),
    /// Set or clear the caller's display name. Reply: `{}`.
    #[serde(rename = "profile.set")]
    ProfileSet(ProfileSetReq),
    /// Change the caller's password; revokes the user's other sessions.
    /// Reply: [`crate::PasswdOk`].
    #[serde(rename = "passwd")]
    Passwd(PasswdReq),
    /// The caller's sessions, a page at a time. Reply: [`crate::SessionsOk`].
    #[serde(rename = "sessions")]
    Sessions(SessionsReq),
    /// Revoke one of the caller's sessions. Reply: `{}`.
    #[serde(rename = "session.revoke")]
    SessionRevoke(SessionRevokeReq),
    /// Full-text search over the rooms the caller may read. Reply:
    /// [`crate::SearchOk`].
    #[serde(rename = "search")]
    Search(SearchReq),
    /// Replace the text of one's own message. Reply: [`crate::ChangeOk`].
    #[serde(rename = "message.edit")]
    MessageEdit(EditReq),
    /// Delete a message (one's own; moderators and owners: anyone's).
    /// Reply: [`crate::ChangeOk`].
    #[serde(rename = "message.delete")]
    MessageDelete(MessageReq),
    /// Add or remove a reaction. Reply: [`crate::ChangeOk`].
    #[serde(rename = "message.react")]
    MessageReact(ReactReq),
    /// A message and its replies, a page at a time. Reply:
    /// [`crate::ThreadOk`].
    #[serde(rename = "thread")]
    Thread(ThreadReq),
    /// Tell the room's other members the caller is typing. Reply: `{}`.
    #[serde(rename = "typing")]
    Typing(RoomReq),
}

impl Op {
    /// The wire name of the operation, for logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Hello(_) => "hello",
            Self::Register(_) => "register",
            Self::Login(_) => "login",
            Self::Resume(_) => "resume",
            Self::Logout => "logout",
            Self::Rooms(_) => "rooms",
            Self::RoomCreate(_) => "room.create",
            Self::RoomJoin(_) => "room.join",
            Self::RoomLeave(_) => "room.leave",
            Self::Members(_) => "members",
            Self::Send(_) => "send",
            Self::History(_) => "history",
            Self::Sync(_) => "sync",
            Self::Read(_) => "read",
            Self::Ping => "ping",
            Self::Quit(_) => "quit",
            Self::UploadBegin(_) => "upload.begin",
            Self::UploadStatus(_) => "upload.status",
            Self::FileGet(_) => "file.get",
            Self::DmOpen(_) => "dm.open",
            Self::RoomInvite(_) => "room.invite",
            Self::RoomKick(_) => "room.kick",
            Self::RoomBan(_) => "room.ban",
            Self::RoomUnban(_) => "room.unban",
            Self::RoomRole(_) => "room.role",
            Self::RoomTopic(_) => "room.topic",
            Self::RoomRename(_) => "room.rename",
            Self::RoomPrivate(_) => "room.private",
            Self::RoomArchive(_) => "room.archive",
            Self::RoomDelete(_) => "room.delete",
            Self::Profile(_) => "profile",
            Self::ProfileSet(_) => "profile.set",
            Self::Passwd(_) => "passwd",
            Self::Sessions(_) => "sessions",
            Self::SessionRevoke(_) => "session.revoke",
            Self::Search(_) => "search",
            Self::MessageEdit(_) => "message.edit",
            Self::MessageDelete(_) => "message.delete",
            Self::MessageReact(_) => "message.react",
            Self::Thread(_) => "thread",
            Self::Typing(_) => "typing",
        }
    }
}

/// `hello` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Highest protocol version the client speaks; 1 when absent (the only
    /// version there is).
    #[serde(default = "first_version")]
    pub version: u32,
    /// Free-form client name and version, for the server log.
    #[serde(default)]
    pub client: String,
    /// A tenant to ask about before logging in: the reply then says
    /// whether it allows self-registration (`open_registration`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// The `version` a `hello` without one speaks.
fn first_version() -> u32 {
    1
}

/// `register` / `login` fields.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    /// Tenant name.
    pub tenant: String,
    /// User name.
    pub user: String,
    /// Password (never logged).
    pub password: String,
    /// Free-form client name and version, shown in the user's `sessions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("tenant", &self.tenant)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("client", &self.client)
            .finish()
    }
}

/// `resume` fields.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resume {
    /// Token from an earlier [`crate::LoginOk`].
    pub token: String,
    /// Free-form client name and version, shown in the user's `sessions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

impl std::fmt::Debug for Resume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Resume { token: <redacted> }")
    }
}

/// Fields of operations that name one room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomReq {
    /// Room name.
    pub room: String,
}

/// `rooms` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomsReq {
    /// Only rooms whose name sorts after this one (the last name of the
    /// previous page); absent = from the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// `members` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersReq {
    /// Room name.
    pub room: String,
    /// Only members whose user name sorts after this one (the last name of
    /// the previous page); absent = from the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// `room.create` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomCreateReq {
    /// Room name.
    pub room: String,
    /// `true` for a private room (members by invitation only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub private: bool,
}

/// `dm.open` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmOpenReq {
    /// The other members' user names (1 to 15; the caller is added).
    pub users: Vec<String>,
}

/// Fields of operations on one user in one room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserReq {
    /// The room.
    pub room: String,
    /// The user.
    pub user: String,
}

/// `room.kick` and `room.ban` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModerateReq {
    /// The room.
    pub room: String,
    /// The user.
    pub user: String,
    /// Why, shown in the room's history (at most
    /// [`crate::MAX_REASON_LEN`] bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `room.role` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleReq {
    /// The room.
    pub room: String,
    /// The member.
    pub user: String,
    /// The new role; `owner` moves the ownership to `user`.
    pub role: crate::Role,
}

/// `room.topic` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicReq {
    /// The room.
    pub room: String,
    /// The new topic (at most [`crate::MAX_TOPIC_LEN`] bytes; empty clears it).
    pub topic: String,
}

/// `room.rename` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenameReq {
    /// The room.
    pub room: String,
    /// The new name.
    pub name: String,
}

/// `room.private` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateReq {
    /// The room.
    pub room: String,
    /// `true` makes it private, `false` public.
    pub private: bool,
}

/// `room.archive` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveReq {
    /// The room.
    pub room: String,
    /// `true` archives it, `false` makes it writable again.
    pub archived: bool,
}

/// `send` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendReq {
    /// Room name.
    pub room: String,
    /// Idempotency key chosen by the client: a retry with the same key from
    /// the same user in the same room returns the original seq.
    pub client_msg_id: String,
    /// Message text.
    pub body: String,
    /// The seq of the message (in the same room) this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<u64>,
}

/// Fields of operations on one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageReq {
    /// The room.
    pub room: String,
    /// The message's seq.
    pub seq: u64,
}

/// `message.edit` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EditReq {
    /// The room.
    pub room: String,
    /// The message's seq.
    pub seq: u64,
    /// The new text (as `send`'s `body`).
    pub body: String,
}

/// `message.react` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReactReq {
    /// The room.
    pub room: String,
    /// The message's seq.
    pub seq: u64,
    /// The reaction: 1 to [`crate::MAX_EMOJI_LEN`] bytes, no white space or
    /// control characters.
    pub emoji: String,
    /// `true` takes the caller's reaction back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remove: bool,
}

/// `thread` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThreadReq {
    /// The room.
    pub room: String,
    /// The seq of the message whose replies to list.
    pub seq: u64,
    /// Only replies with a seq above this (the last one of the previous
    /// page); absent = from the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_seq: Option<u64>,
    /// Page size, 1..=[`crate::MAX_PAGE`], default [`crate::DEFAULT_PAGE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `history` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryReq {
    /// Room name.
    pub room: String,
    /// Return messages with seq strictly below this; absent = from the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_seq: Option<u64>,
    /// Page size, 1..=[`crate::MAX_PAGE`], default [`crate::DEFAULT_PAGE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `sync` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReq {
    /// Room name.
    pub room: String,
    /// Return messages with seq strictly above this (the last seq seen).
    pub after_seq: u64,
    /// Page size, 1..=[`crate::MAX_PAGE`], default [`crate::MAX_PAGE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `read` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadReq {
    /// Room name.
    pub room: String,
    /// Highest seq the user has seen; the marker never moves backwards.
    pub seq: u64,
}

/// `quit` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quit {
    /// Shown to the room in the `presence` event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `upload.begin` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadBeginReq {
    /// Room the file is offered to.
    pub room: String,
    /// Display name (the server sanitizes it; never a path).
    pub name: String,
    /// Exact size in bytes.
    pub size: u64,
    /// BLAKE3 of the content, lower-case hex. Exactly one of `hash` and
    /// `head` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Instead of `hash` ("hash later"): BLAKE3 of the first
    /// [`crate::HEAD_LEN`] bytes (of all of them when the file is shorter),
    /// lower-case hex. The client may then send without hashing the whole
    /// file first, and ends the stream with the file's digest; unless the
    /// tenant might hold the content already, which the server answers
    /// with `hash_required`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// Idempotency key naming this share (1 to [`crate::MAX_CLIENT_MSG_ID_LEN`]
    /// bytes, unique per share like `client_msg_id`): a repeat of the same
    /// begin (same key, room, size and `hash` or `head`) returns the same upload, or the
    /// same file and seq once it is stored, and posts nothing new. Absent:
    /// every begin that finds the content stored posts a new file message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_key: Option<String>,
}

/// `upload.status` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadStatusReq {
    /// From the `upload.begin` reply.
    pub upload_id: String,
}

/// `file.get` fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileGetReq {
    /// File id from a file message.
    pub file_id: u64,
    /// First byte wanted (to resume); default 0.
    #[serde(default)]
    pub offset: u64,
}

/// A request frame that could not be understood, with the id if one could be
/// recovered so the error can be addressed to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The request's `id`, when the frame was a JSON object with a numeric id.
    pub id: Option<u64>,
    /// `bad_request` with serde's explanation.
    pub error: ErrorBody,
}

impl Request {
    /// Parses one frame payload.
    ///
    /// # Errors
    /// [`ParseError`] for invalid JSON, an unknown `op`, missing or
    /// mistyped fields, or an `id` above [`MAX_REQUEST_ID`]; it carries the
    /// request id when one could be read. Its message quotes at most a
    /// short, escaped prefix of the offending input.
    pub fn parse(payload: &[u8]) -> Result<Self, ParseError> {
        let refuse = |message: String| ParseError {
            id: id_only(payload),
            error: ErrorBody::new(ErrorCode::BadRequest, message),
        };
        if more_values_than(payload, MAX_REQUEST_VALUES) {
            return Err(refuse(format!(
                "a request holds at most {MAX_REQUEST_VALUES} JSON values"
            )));
        }
        let req: Self = serde_json::from_slice(payload).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                refuse(format!("invalid JSON: {}", clip_quotes(&e.to_string())))
            } else if let Some(op) = unknown_op(&e, payload) {
                refuse(format!("unknown op {}; docs/PROTOCOL.md section 4 lists them", quote(&op)))
            } else {
                refuse(format!("invalid request: {}", clip_quotes(&e.to_string())))
            }
        })?;
        if req.id > MAX_REQUEST_ID {
            return Err(ParseError {
                id: None,
                error: ErrorBody::new(ErrorCode::BadRequest, "id must be 0 to 2^53-1"),
            });
        }
        Ok(req)
    }
}

/// The `op` of a payload whose parse failed on an unknown variant (serde's
/// message would list every op after it).
fn unknown_op(e: &serde_json::Error, payload: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct OpOnly {
        op: String,
    }
    if !e.to_string().starts_with("unknown variant") {
        return None;
    }
    serde_json::from_slice::<OpOnly>(payload).ok().map(|o| o.op)
}

/// serde's message with every quoted piece of input (between `"` or
/// backticks) cut to [`MAX_QUOTED_CHARS`] characters. serde quotes what it
/// complains about — a 1 MiB string where a number belongs is quoted
/// whole — and the reply must not grow with it.
fn clip_quotes(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(1024));
    let mut quote: Option<(char, usize)> = None;
    let mut escaped = false;
    for c in message.chars() {
        match &mut quote {
            None => {
                out.push(c);
                if c == '"' || c == '`' {
                    quote = Some((c, 0));
                }
            }
            Some((close, n)) => {
                let ends = c == *close && !escaped;
                escaped = !escaped && c == '\\' && *close == '"';
                if ends {
                    if *n > MAX_QUOTED_CHARS {
                        out.push('…');
                    }
                    out.push(c);
                    quote = None;
                } else {
                    *n += 1;
                    if *n <= MAX_QUOTED_CHARS {
                        out.push(c);
                    }
                }
            }
        }
    }
    out
}

/// The `id` an error reply to `payload` carries in `re` (PROTOCOL.md §3):
/// the payload must be well-formed JSON — UTF-8 throughout, RFC 8259
/// syntax, nested at most [`MAX_REQUEST_DEPTH`] levels — whose top-level
/// value is an object with one `id` member holding an integer in
/// 0..=[`MAX_REQUEST_ID`]; otherwise `None` (`re: null`). Other members are
/// checked for syntax and skipped without being built. Only objects: a
/// derived struct would also read `[7]` as `{"id": 7}`.
fn id_only(payload: &[u8]) -> Option<u64> {
    #[derive(Deserialize)]
    struct IdOnly {
        id: Option<u64>,
    }
    // Whole-text checks first: serde_json skips the strings and nesting of
    // members it ignores without checking UTF-8 or depth.
    let text = std::str::from_utf8(payload).ok()?;
    if deeper_than(payload, MAX_REQUEST_DEPTH) {
        return None;
    }
    let first = payload.iter().find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        return None;
    }
    serde_json::from_str::<IdOnly>(text).ok()?.id.filter(|&id| id <= MAX_REQUEST_ID)
}

/// Whether objects and arrays in `payload` nest deeper than `max` levels,
/// counted outside strings.
fn deeper_than(payload: &[u8], max: usize) -> bool {
    let mut depth = 0usize;
    for b in outside_strings(payload) {
        if matches!(b, b'{' | b'[') {
            depth += 1;
            if depth > max {
                return true;
            }
        } else if matches!(b, b'}' | b']') {
            depth = depth.saturating_sub(1);
        }
    }
    false
}

/// The bytes of `payload` that lie outside JSON strings (quotes excluded),
/// found without parsing: what the nesting and value counts look at.
fn outside_strings(payload: &[u8]) -> impl Iterator<Item = u8> + '_ {
    let (mut in_string, mut escaped) = (false, false);
    payload.iter().copied().filter(move |&b| {
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            false
        } else if b == b'"' {
            in_string = true;
            false
        } else {
            true
        }
    })
}

/// Whether `payload` holds more than `max` JSON values, counted without
/// parsing: every `{`, `[` and `,` outside strings starts a value (or a
/// member). Invalid JSON may miscount; the parser refuses it anyway.
fn more_values_than(payload: &[u8], max: usize) -> bool {
    outside_strings(payload).filter(|b| matches!(b, b'{' | b'[' | b',')).nth(max).is_some()
}
