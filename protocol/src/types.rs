//! Records that appear in replies and events.

use serde::{Deserialize, Serialize};

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// A user's text, sent with `send`.
    Text,
    /// A file offer; `body` holds the file's display name.
    File,
    /// Written by the server, not typed by a user. No operation of this
    /// version produces one; later ones record room events this way. Also
    /// what a kind this version does not know reads as, so that a newer
    /// server's messages still parse.
    #[serde(other)]
    System,
}

impl MessageKind {
    /// Storage and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::File => "file",
            Self::System => "system",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "text" => Self::Text,
            "file" => Self::File,
            "system" => Self::System,
            _ => return None,
        })
    }
}

/// One message of a room's history, as stored and as delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// Room name.
    pub room: String,
    /// Position in the room: 1, 2, 3, ... gap-free, in commit order.
    pub seq: u64,
    /// Sender's user name.
    pub sender: String,
    /// Commit time, milliseconds since the Unix epoch (UTC).
    pub ts: i64,
    /// What the message carries.
    pub kind: MessageKind,
    /// Text (opaque to the server beyond being UTF-8).
    pub body: String,
    /// The sender's idempotency key, echoed so a sender recognises its own
    /// messages; absent for system messages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_msg_id: Option<String>,
    /// The offered file, for `kind: file`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<crate::files::FileInfo>,
}

/// A room as listed by `rooms` and returned by `room.create` / `room.join`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// Room name, unique within the tenant.
    pub name: String,
    /// Whether the caller is a member.
    pub joined: bool,
    /// Highest seq in the room (0 when empty).
    pub last_seq: u64,
    /// The caller's read marker (0 when never read or not a member).
    pub read_seq: u64,
    /// Messages after the read marker (0 when not a member).
    pub unread: u64,
}

/// One member of a room, with the old `MEMBERS ONLINE` flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// User name.
    pub user: String,
    /// Whether the user has at least one live connection.
    pub online: bool,
}

/// `presence` event: a user sharing a room with you came online or went offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Presence {
    /// User name.
    pub user: String,
    /// New state.
    pub online: bool,
    /// Why the user went offline (`quit` reason, "connection lost"), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `member` event: someone joined or left a room you are in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberEvent {
    /// Room name.
    pub room: String,
    /// User name.
    pub user: String,
    /// `true` for a join, `false` for a leave.
    pub joined: bool,
}

/// `lagged` event: the server dropped events for this room because the
/// connection read too slowly; the client must `sync` the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lagged {
    /// Room name.
    pub room: String,
}
