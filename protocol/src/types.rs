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
    /// The room's id (`+` and 16 hex digits): unlike `room`, it never
    /// changes (a public room's `room` is its name, which a rename changes).
    /// Absent from servers that predate room ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
    /// For `kind: system`: what changed, for clients that act on it
    /// (`body` says the same in words).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Box<Change>>,
    /// When the body was last edited (ms since the epoch); absent when
    /// never. `body` is the current text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<i64>,
    /// Set when the message was deleted: who did it and when. `body` is
    /// then empty and `file` absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<Box<Tombstone>>,
    /// The message this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<Box<ReplyTo>>,
    /// Whom the message mentions, as the server decided when it was sent
    /// (PROTOCOL.md section 12): the names of the room's members it says
    /// `@name` to, each once, or [`crate::MENTION_EVERYONE`] (`"@room"`)
    /// when it says `@room`; absent when nobody. (Boxed: most messages
    /// mention nobody, and a message is moved around a lot.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mentions: Option<Box<Vec<String>>>,
    /// Reactions, one entry per emoji, in the order they were first given
    /// (in `history`, `sync` and `thread` replies; absent when none).
    #[serde(default, skip_serializing_if = "no_reactions")]
    pub reactions: Box<[Reaction]>,
    /// How many messages reply to this one (in `history`, `sync` and
    /// `thread` replies; absent when none).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replies: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn no_reactions(r: &[Reaction]) -> bool {
    r.is_empty()
}

/// A deleted message's tombstone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tombstone {
    /// Who deleted it (the sender, or a moderator).
    pub by: String,
    /// When (ms since the epoch).
    pub ts: i64,
}

/// What a reply shows of the message it answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyTo {
    /// The parent's seq, in the same room.
    pub seq: u64,
    /// The parent's sender.
    pub sender: String,
    /// The start of the parent's current body (at most
    /// [`crate::MAX_EXCERPT_CHARS`] characters, `…` when cut); empty when
    /// the parent was deleted.
    pub excerpt: String,
    /// `true` when the parent was deleted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

/// The reactions of one emoji to a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaction {
    /// The emoji (any short text without white space, usually one emoji).
    pub emoji: String,
    /// How many users reacted with it.
    pub count: u64,
    /// Whether the caller is one of them.
    #[serde(default)]
    pub me: bool,
}

impl Message {
    /// A text message with nothing else set: no id, file, change, reply,
    /// reactions or mentions (a base to fill in, as tests and local
    /// previews do).
    pub fn text(
        room: impl Into<String>,
        seq: u64,
        sender: impl Into<String>,
        ts: i64,
        body: impl Into<String>,
    ) -> Self {
        Self {
            room: room.into(),
            seq,
            sender: sender.into(),
            ts,
            kind: MessageKind::Text,
            body: body.into(),
            client_msg_id: None,
            file: None,
            room_id: None,
            change: None,
            edited: None,
            deleted: None,
            reply_to: None,
            reactions: Box::default(),
            mentions: None,
            replies: 0,
        }
    }

    /// The key to track the room by: its id when the server sent one, else
    /// its name.
    pub fn room_key(&self) -> &str {
        self.room_id.as_deref().unwrap_or(&self.room)
    }

    /// Whether the message counts as unread for `user` once past their read
    /// marker: a text or file message of someone else's, not deleted
    /// (joins, edits, reactions and deletions never count).
    pub fn counts_for(&self, user: &str) -> bool {
        self.kind != MessageKind::System && self.deleted.is_none() && self.sender != user
    }

    /// Whether the message mentions `user`: by name, or with `@room` when
    /// someone else sent it.
    pub fn mentions_user(&self, user: &str) -> bool {
        let mut named = self.mentions.iter().flat_map(|m| m.iter());
        self.counts_for(user) && named.any(|n| n == user || n == crate::MENTION_EVERYONE)
    }
}

/// What kind of room a room is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoomKind {
    /// Anyone in the tenant may see it and join it.
    #[default]
    Public,
    /// Only members (by invitation) and the tenant's admins see it.
    Private,
    /// A direct message: a fixed set of 2 to 16 users.
    Dm,
}

impl RoomKind {
    /// Storage and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::Dm => "dm",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "public" => Self::Public,
            "private" => Self::Private,
            "dm" => Self::Dm,
            _ => return None,
        })
    }
}

/// A member's role in a room (direct messages have no roles: every member
/// is a `member`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads and posts.
    Member,
    /// Also invites, kicks, bans and unbans.
    Moderator,
    /// Also promotes and demotes, renames, sets the topic, makes the room
    /// public or private, transfers ownership, archives and deletes. One
    /// per room.
    Owner,
}

impl Role {
    /// Storage and wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Moderator => "moderator",
            Self::Owner => "owner",
        }
    }

    /// Parses the storage spelling.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "member" => Self::Member,
            "moderator" => Self::Moderator,
            "owner" => Self::Owner,
            _ => return None,
        })
    }
}

/// What a `system` message records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    /// `user` joined.
    Joined,
    /// `user` left.
    Left,
    /// `by` invited `user`.
    Invited,
    /// `by` removed `user` (who may rejoin a public room).
    Kicked,
    /// `by` banned `user`.
    Banned,
    /// `by` lifted `user`'s ban.
    Unbanned,
    /// `by` gave `user` the role `role` (`owner`: ownership moved to `user`).
    Role,
    /// `by` set the topic to `topic`.
    Topic,
    /// `by` renamed the room to `name`.
    Renamed,
    /// `by` made the room private.
    MadePrivate,
    /// `by` made the room public.
    MadePublic,
    /// `by` archived the room: read-only from now on.
    Archived,
    /// `by` made an archived room writable again.
    Unarchived,
    /// `by` edited message `seq`; `body` is its new text.
    Edited,
    /// `by` deleted message `seq`.
    Deleted,
    /// `by` reacted to message `seq` with `emoji`.
    Reacted,
    /// `by` took back their reaction `emoji` to message `seq`.
    Unreacted,
    /// A change this client does not know (sent by a newer server).
    #[serde(other)]
    Unknown,
}

/// The `change` of a `system` message: who did what to whom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What happened.
    #[serde(rename = "type")]
    pub kind: ChangeKind,
    /// Who did it (for `joined` and `left`, the user themself).
    pub by: String,
    /// Whom it concerns (membership and role changes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The new role (`role`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The new topic (`topic`; empty = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// The new name (`renamed`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Why, as the moderator gave it (`kicked`, `banned`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The message acted on (`edited`, `deleted`, `reacted`, `unreacted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// The edited message's new text (`edited`; absent once that message
    /// is deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// The emoji (`reacted`, `unreacted`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emoji: Option<String>,
}

impl Change {
    /// A change of `kind` by `by` with nothing else said (the fields a
    /// kind needs are set after).
    pub fn new(kind: ChangeKind, by: impl Into<String>) -> Self {
        Self {
            kind,
            by: by.into(),
            user: None,
            role: None,
            topic: None,
            name: None,
            reason: None,
            seq: None,
            body: None,
            emoji: None,
        }
    }
}

/// A room as listed by `rooms` and returned by `room.create`, `room.join`
/// and `dm.open`. The fields after `unread` are absent from servers that
/// predate them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomInfo {
    /// What to name the room by in requests, and the `room` of its
    /// messages: a public room's name; a private room's or a direct
    /// message's id (`id`).
    pub name: String,
    /// Whether the caller is a member.
    pub joined: bool,
    /// Highest seq in the room (0 when empty).
    pub last_seq: u64,
    /// The caller's read marker (0 when never read or not a member).
    pub read_seq: u64,
    /// Text and file messages of others after the read marker, not
    /// deleted (0 when not a member); at most
    /// [`crate::MAX_UNREAD_COUNT`].
    pub unread: u64,
    /// Of those, the ones that mention the caller (by name or `@room`);
    /// at most [`crate::MAX_UNREAD_COUNT`]. 0 from servers that predate
    /// mentions.
    #[serde(default)]
    pub mentions: u64,
    /// The room's id: `+` and 16 lower-case hex digits, never changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Public, private or direct message.
    #[serde(default)]
    pub kind: RoomKind,
    /// What to show: a room's name; for a direct message `@` and the other
    /// members' names, comma-separated (also a name the caller may use in
    /// requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The caller's role, when a member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// Whether the caller is invited (and not yet a member).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub invited: bool,
    /// The room's topic; absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Whether the room is archived (read-only).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub archived: bool,
}

impl RoomInfo {
    /// The key to track the room by: its id when the server sent one, else
    /// its name (matches [`Message::room_key`]).
    pub fn key(&self) -> &str {
        self.id.as_deref().unwrap_or(&self.name)
    }

    /// What to show for the room: its title, else its name.
    pub fn display(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.name)
    }

    /// Follows a `message` event of this room, as seen by `user` (the
    /// caller): `last_seq` moves, and `unread` and `mentions` count it when
    /// it is past the read marker and counts ([`Message::counts_for`]); a
    /// message at or below `last_seq` is in the figures already.
    /// A deletion's system message of a message past the marker that
    /// counted is not undone here: a client that needs that exact figure
    /// asks `rooms` again.
    pub fn follow(&mut self, m: &Message, user: &str) {
        // At or below `last_seq`: counted in the figures already.
        if m.seq <= self.last_seq {
            return;
        }
        self.last_seq = m.seq;
        if self.joined && m.seq > self.read_seq && m.counts_for(user) {
            self.unread = (self.unread + 1).min(crate::MAX_UNREAD_COUNT);
            if m.mentions_user(user) {
                self.mentions = (self.mentions + 1).min(crate::MAX_UNREAD_COUNT);
            }
        }
    }

    /// Follows a `read` event from another of the user's connections:
    /// the marker and, from a server that sends them, the counts.
    ///
    /// The event's counts are the server's as of its `last_seq`; `heard`
    /// are the messages of this room the client has had (any order; only
    /// those past the event's `last_seq` are looked at: events come in
    /// seq order, so those are the newest). Each of them that counts is
    /// added on top, as [`Self::follow`] would, and the `message` events
    /// still to come at or below `last_seq` count nothing (they are in the
    /// figures), so a message that raced the event is counted exactly once.
    /// An event whose marker is behind this client's (a stale one, or this
    /// client read further itself) changes nothing; nor do its counts
    /// when the client holds figures newer than the event's and has not
    /// heard every message since (then they are already right).
    pub fn follow_read<'a>(
        &mut self,
        ev: &ReadEvent,
        heard: impl IntoIterator<Item = &'a Message>,
        user: &str,
    ) {
        if ev.seq < self.read_seq {
            return;
        }
        self.read_seq = ev.seq;
        match (ev.unread, ev.mentions, ev.last_seq) {
            (Some(unread), Some(mentions), Some(at)) => {
                let past: Vec<&Message> = heard.into_iter().filter(|m| m.seq > at).collect();
                let newest = past.iter().map(|m| m.seq).max().unwrap_or(at);
                if newest < self.last_seq {
                    // Figures newer than the event's: with the same marker
                    // (it is not behind), and not to be undone.
                    return;
                }
                let counted = past.iter().filter(|m| m.seq > ev.seq && m.counts_for(user));
                let (more, named) =
                    counted.fold((0, 0), |(n, k), m| (n + 1, k + u64::from(m.mentions_user(user))));
                self.unread = (unread + more).min(crate::MAX_UNREAD_COUNT);
                self.mentions = (mentions + named).min(crate::MAX_UNREAD_COUNT);
                self.last_seq = self.last_seq.max(at);
            }
            // A server that predates `last_seq`: its counts as they come.
            (Some(unread), Some(mentions), None) => {
                (self.unread, self.mentions) = (unread, mentions)
            }
            // An older server: everything up to the marker is read.
            _ if self.read_seq >= self.last_seq => (self.unread, self.mentions) = (0, 0),
            _ => {}
        }
    }

    /// Takes `fresh`, the server's room object (from `rooms`, a `room`
    /// event, a join), as this room's figures: they are the server's as of
    /// `fresh.last_seq`, and each message of `heard` (this room's messages
    /// the client has had) past it that counts is added on top, as
    /// [`Self::follow_read`] does. Figures older than what the client holds
    /// (`fresh.last_seq` below this room's, with messages in between never
    /// heard) replace nothing but the room's other fields.
    pub fn refresh<'a>(
        &mut self,
        fresh: Self,
        heard: impl IntoIterator<Item = &'a Message>,
        user: &str,
    ) {
        let at = fresh.last_seq;
        let past: Vec<&Message> = heard.into_iter().filter(|m| m.seq > at).collect();
        let newest = past.iter().map(|m| m.seq).max().unwrap_or(at);
        let stale = fresh.joined
            && self.joined
            && (newest < self.last_seq || fresh.read_seq < self.read_seq);
        let kept = (self.last_seq, self.read_seq, self.unread, self.mentions);
        *self = fresh;
        if stale {
            (self.last_seq, self.read_seq, self.unread, self.mentions) = kept;
            return;
        }
        self.last_seq = newest;
        if !self.joined {
            return;
        }
        for m in past.into_iter().filter(|m| m.seq > self.read_seq && m.counts_for(user)) {
            self.unread = (self.unread + 1).min(crate::MAX_UNREAD_COUNT);
            if m.mentions_user(user) {
                self.mentions = (self.mentions + 1).min(crate::MAX_UNREAD_COUNT);
            }
        }
    }
}

/// One member of a room, with the old `MEMBERS ONLINE` flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// User name.
    pub user: String,
    /// Whether the user has at least one live connection.
    pub online: bool,
    /// The member's role in the room (absent from servers that predate roles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The user's display name (`profile.set`); absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
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

/// `read` event: the user's read marker of a room moved, on another of
/// their connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadEvent {
    /// Room name.
    pub room: String,
    /// The room's id.
    pub room_id: String,
    /// The marker's new position.
    pub seq: u64,
    /// The room's `last_seq` the counts below were taken at: they count
    /// the messages up to it; those after it are the client's to add
    /// (absent from servers that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seq: Option<u64>,
    /// The room's `unread` count for the user after the move (absent from
    /// servers that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread: Option<u64>,
    /// The room's `mentions` count for the user after the move (absent
    /// from servers that predate it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mentions: Option<u64>,
}

/// `typing` event: a member is typing in a room (a hint that expires; see
/// [`crate::TYPING_EXPIRES_MS`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Typing {
    /// Room name.
    pub room: String,
    /// The room's id.
    pub room_id: String,
    /// Who is typing.
    pub user: String,
}

/// `lagged` event: the server dropped events for this room because the
/// connection read too slowly; the client must `sync` the room.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lagged {
    /// Room name.
    pub room: String,
    /// The room's id (absent from servers that predate room ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room_id: Option<String>,
}

impl Lagged {
    /// The key to track the room by (matches [`Message::room_key`]).
    pub fn key(&self) -> &str {
        self.room_id.as_deref().unwrap_or(&self.room)
    }
}

/// Why a room left the caller's list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovedReason {
    /// The user left it (on another connection).
    Left,
    /// A moderator removed the user.
    Kicked,
    /// A moderator banned the user.
    Banned,
    /// The room was deleted.
    Deleted,
    /// A reason this client does not know (sent by a newer server).
    #[serde(other)]
    Unknown,
}

/// `room.removed` event: a room the user was in (or invited to) is no
/// longer theirs; its events stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoomRemoved {
    /// The room's `name` as it was listed.
    pub room: String,
    /// The room's id.
    pub room_id: String,
    /// Why.
    pub reason: RemovedReason,
    /// Who did it, when someone else did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}
