//! What a room shows, in order ([`Item`]): the messages the server
//! committed, lines about people and the connection (joins, leaves, quits
//! with their reasons, a lost connection) that arrive live and are never
//! stored, and the user's own messages not acknowledged yet (sending, or
//! failed with why). Pure.
//!
//! Items are kept sorted by [`Item::key`]: a message by its seq; an event
//! line after the newest message known when it happened (and after the
//! event lines before it); unacknowledged sends last, in the order typed.

use crate::Message;

/// One thing in a room's timeline.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    /// A committed message.
    Msg(Message),
    /// A line about someone or the connection.
    Event(EventLine),
    /// A message typed here and not acknowledged (yet).
    Pending(Pending),
}

/// A line about people or the connection, shown dim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct EventLine {
    /// When it happened (Unix ms, local clock).
    pub(crate) ts: i64,
    /// The newest seq of the room when it happened: it sorts after it.
    pub(crate) after: u64,
    /// Orders event lines with the same `after` (from 1, increasing).
    pub(crate) n: u64,
    /// What happened.
    pub(crate) what: EventKind,
}

/// What an event line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// Someone joined the room.
    Joined(String),
    /// Someone left the room.
    Left(String),
    /// Someone came online.
    Online(String),
    /// Someone went offline, with the reason the server gave (`/quit`'s,
    /// or `connection lost`, `server shutting down`).
    Offline {
        /// Who.
        user: String,
        /// Why, when known.
        reason: Option<String>,
    },
    /// This client lost its connection, for this reason.
    Lost(String),
    /// This client is connected again.
    Back,
    /// The user is out of the room: kicked, banned or the room deleted
    /// (by whom, when someone else did it).
    Removed {
        /// Why.
        reason: crate::RemovedReason,
        /// Who did it.
        by: Option<String>,
    },
}

impl EventKind {
    /// The line's text: `→ bob joined`, `⇠ bob quit (lunch)`.
    pub(crate) fn text(&self) -> String {
        match self {
            Self::Joined(u) => format!("→ {u} joined"),
            Self::Left(u) => format!("← {u} left"),
            Self::Online(u) => format!("⇢ {u} is online"),
            Self::Offline { user, reason: None } => format!("⇠ {user} went offline"),
            Self::Offline { user, reason: Some(r) } if r == "quit" => format!("⇠ {user} quit"),
            Self::Offline { user, reason: Some(r) } => format!("⇠ {user} quit ({r})"),
            Self::Lost(why) => format!("⚡ disconnected: {why}"),
            Self::Back => "⚡ connected again".to_owned(),
            Self::Removed { reason, by } => {
                let what = match reason {
                    crate::RemovedReason::Kicked => "you were removed from the room",
                    crate::RemovedReason::Banned => "you were banned from the room",
                    crate::RemovedReason::Deleted => "the room was deleted",
                    crate::RemovedReason::Left => "you left the room",
                    crate::RemovedReason::Unknown => "you are no longer in the room",
                };
                match by {
                    Some(by) => format!("⛔ {what} by {by}"),
                    None => format!("⛔ {what}"),
                }
            }
        }
    }
}

/// A message typed here that the server has not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pending {
    /// Names it until it is acknowledged or dropped.
    pub(crate) local: u64,
    /// The text sent.
    pub(crate) body: String,
    /// When it was typed (Unix ms).
    pub(crate) ts: i64,
    /// Where it stands.
    pub(crate) state: SendState,
    /// The message it replies to.
    pub(crate) reply_to: Option<u64>,
}

/// Where an unacknowledged send stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SendState {
    /// On its way (or waiting for the connection to come back).
    Sending,
    /// Acknowledged as this seq; shown until that message arrives.
    Sent(u64),
    /// Refused, or the client closed first: why. Retry or edit it.
    Failed(String),
}

impl Item {
    /// The sort key (see the module docs).
    pub(crate) fn key(&self) -> (u64, u64) {
        match self {
            Self::Msg(m) => (m.seq, 0),
            Self::Event(e) => (e.after, e.n),
            Self::Pending(p) => (u64::MAX, p.local),
        }
    }

    /// When it happened or was typed (Unix ms).
    pub(crate) fn ts(&self) -> i64 {
        match self {
            Self::Msg(m) => m.ts,
            Self::Event(e) => e.ts,
            Self::Pending(p) => p.ts,
        }
    }

    /// The message, if it is one.
    pub(crate) fn msg(&self) -> Option<&Message> {
        match self {
            Self::Msg(m) => Some(m),
            _ => None,
        }
    }

    /// Whether it is an event line.
    pub(crate) fn is_event(&self) -> bool {
        matches!(self, Self::Event(_))
    }
}

/// How event lines are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventsShown {
    /// One dim line each.
    Lines,
    /// Each run of them folded into one line.
    Folded,
    /// Not at all.
    Hidden,
}

impl EventsShown {
    /// The name in the config file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Lines => "lines",
            Self::Folded => "folded",
            Self::Hidden => "hidden",
        }
    }

    /// Parses a name from the config file.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        [Self::Lines, Self::Folded, Self::Hidden].into_iter().find(|m| m.name() == s.trim())
    }

    /// The next mode (the toggle key cycles through them).
    pub(crate) fn next(self) -> Self {
        match self {
            Self::Lines => Self::Folded,
            Self::Folded => Self::Hidden,
            Self::Hidden => Self::Lines,
        }
    }
}
