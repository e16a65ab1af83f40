//! What the application hears: [`ClientEvent`]s, in the order they
//! happened, through [`Events`].

use std::sync::Arc;

use qchat_protocol::{MemberEvent, Message, Presence, ReadEvent, RoomInfo, RoomRemoved, Typing};
use tokio::sync::mpsc;
use tokio_util::sync::DropGuard;

use crate::state::ConnState;

/// Something the application should know about, in the order it happened.
///
/// Non-exhaustive: variants may be added. File transfers report through
/// their own handles ([`crate::UploadHandle`], [`crate::DownloadHandle`]);
/// the file messages they produce arrive here as [`ClientEvent::Message`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A new message in a joined room. Each (room, seq) arrives once, in
    /// ascending seq per room, including messages missed while disconnected.
    Message(Message),
    /// A user sharing a room came online or went offline.
    Presence(Presence),
    /// Someone (maybe this user, elsewhere) joined or left a room.
    Member(MemberEvent),
    /// A room appeared in this user's list or changed for them: joined
    /// (maybe elsewhere), invited, a direct message opened by someone
    /// else. Its messages arrive as events from here on when joined.
    Room(Box<RoomInfo>),
    /// A room left this user's list: left elsewhere, kicked, banned, or
    /// deleted. Its events stop. Also when catching up after a reconnect
    /// finds a room no longer readable (reason `Unknown`; `room` and
    /// `room_id` are then the room's id if the client knew it, else its
    /// name).
    RoomRemoved(RoomRemoved),
    /// This user's read marker of a room moved on another connection.
    Read(ReadEvent),
    /// Someone is typing in a joined room (a hint: show it for
    /// [`qchat_protocol::TYPING_EXPIRES_MS`] unless renewed).
    Typing(Typing),
    /// The connection state changed.
    State(ConnState),
}

/// The stream of [`ClientEvent`]s. Read it promptly: when its queue (4096
/// events) is full the client stops reading from the server rather than
/// drop anything.
#[derive(Debug)]
pub struct Events {
    rx: mpsc::Receiver<ClientEvent>,
    _guard: Arc<DropGuard>,
}

impl Events {
    /// The events `rx` receives; `guard` stops the client once every
    /// handle is gone.
    pub(crate) fn new(rx: mpsc::Receiver<ClientEvent>, guard: Arc<DropGuard>) -> Self {
        Self { rx, _guard: guard }
    }

    /// The next event; `None` once the client has stopped and every event
    /// was read.
    pub async fn recv(&mut self) -> Option<ClientEvent> {
        self.rx.recv().await
    }
}
