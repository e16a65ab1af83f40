//! The vocabulary of the UI: component ids ([`Id`]), messages to the update
//! function ([`Msg`]), events from the network side ([`UserEvent`] /
//! [`NetEvent`]) and the work update asks the network side to do
//! ([`Effect`]).

use std::path::PathBuf;

use crate::{ClientEvent, MemberInfo, MessagesOk, RoomInfo, SearchHit};

use super::transfer::{TransferId, TransferUpdate};

/// Mounted components.
#[derive(Debug, Eq, PartialEq, Clone, Copy, Hash)]
pub(crate) enum Id {
    /// The log-in form (and trust prompt).
    Login,
    /// Rooms with unread counts.
    Rooms,
    /// The message view.
    Messages,
    /// Members with online marks.
    Members,
    /// The input line.
    Input,
    /// The status line.
    Status,
    /// The transfers panel.
    Transfers,
    /// Help and room list overlay.
    Popup,
}

/// A room change `/invite`, `/kick`, `/ban`, `/topic` or `/private` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ModAction {
    /// Invite this user.
    Invite(String),
    /// Remove this member, saying why.
    Kick(String, Option<String>),
    /// Ban this user, saying why.
    Ban(String, Option<String>),
    /// Set the topic (empty: clear it).
    Topic(String),
    /// Make the room private (`true`) or public.
    Private(bool),
}

/// Everything update() reacts to.
#[derive(Debug, Clone, PartialEq)]
// A Msg is made per event and moved once into `update`: boxing the network
// events (the large variant) would allocate for every message instead.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Msg {
    /// Ctrl-C: leave cleanly.
    Quit,
    /// Redraw (resize, clock tick).
    Redraw,
    /// Once a second: refresh speeds, mark rooms read.
    Tick,
    /// Something from the network side.
    Net(NetEvent),
    /// Keys on the log-in screen.
    Login(FormMsg),
    /// Keys on the input line.
    Input(InputMsg),
    /// Keys that move the view.
    View(ViewMsg),
    /// The mouse, on the main screen.
    Mouse(MouseMsg),
    /// A key bound to act on the selected message: that action while a
    /// message is selected, else what the key does otherwise (typing the
    /// letter). Decided when applied, so keys typed ahead of a frame act
    /// on the state they meet.
    OnMessage(MessageAction, Option<Box<Self>>),
}

/// What a key does to the selected message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MessageAction {
    /// Edit it (one's own): the input takes its text.
    Edit,
    /// Delete it (one's own, or any as a moderator), once confirmed.
    Delete,
    /// Reply to it: the next line sent answers it.
    Reply,
    /// React to it: the emoji picker.
    React,
    /// Open its thread.
    Thread,
}

/// What the mouse did, where (terminal cell).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct MouseMsg {
    /// What.
    pub(crate) kind: MouseKind,
    /// Column.
    pub(crate) col: u16,
    /// Row.
    pub(crate) row: u16,
}

/// The mouse actions the UI uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MouseKind {
    /// The wheel rolled up (towards older messages).
    WheelUp,
    /// The wheel rolled down.
    WheelDown,
    /// The left button went down.
    Click,
}

/// Log-in form keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FormMsg {
    /// A printable character.
    Char(char),
    /// Delete left.
    Backspace,
    /// Ctrl-W: delete the word left.
    DeleteWord,
    /// Ctrl-U: empty the field.
    ClearField,
    /// Next field.
    Next,
    /// Previous field.
    Prev,
    /// Enter.
    Submit,
    /// Ctrl-R: log in or register.
    ToggleRegister,
    /// Ctrl-T after a refused changed certificate: ask whether to pin the
    /// new one.
    TrustChanged,
    /// Esc.
    Cancel,
}

/// Input-line keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InputMsg {
    /// A printable character.
    Char(char),
    /// A new line in the message.
    Newline,
    /// Delete left.
    Backspace,
    /// Delete right.
    Delete,
    /// Cursor left.
    Left,
    /// Cursor right.
    Right,
    /// To the previous word.
    WordLeft,
    /// Past the next word.
    WordRight,
    /// To the start of the line.
    Start,
    /// To the end of the line.
    End,
    /// Delete the word left.
    KillWordLeft,
    /// Delete to the end of the next word.
    KillWordRight,
    /// Delete to the start of the line.
    KillToStart,
    /// Delete to the end of the line.
    KillToEnd,
    /// Insert what was deleted last.
    Yank,
    /// Recall the previous sent line, or scroll up a line.
    Up,
    /// Recall the next sent line, or scroll down a line.
    Down,
    /// Enter.
    Submit,
    /// Tab.
    Complete,
}

/// Keys that move the view or switch rooms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ViewMsg {
    /// Up a line.
    LineUp,
    /// Down a line.
    LineDown,
    /// PgUp.
    PageUp,
    /// PgDn.
    PageDown,
    /// Home: oldest loaded message (loads more).
    Top,
    /// End: newest.
    Bottom,
    /// The next room.
    NextRoom,
    /// The previous room.
    PrevRoom,
    /// Esc: close the overlay.
    Close,
    /// Download the newest file offered in this room.
    GetLatestFile,
    /// Take finished (done or failed) transfers off the panel.
    ClearTransfers,
    /// Show every transfer with its full status in an overlay.
    Transfers,
    /// Clear the terminal and draw every cell again.
    Repaint,
    /// Send this room's failed messages again.
    RetryFailed,
    /// Take this room's newest failed message back into the input.
    EditFailed,
    /// Cycle how join, leave and quit lines show.
    ToggleEvents,
    /// The help screen.
    Help,
    /// Select the message above (from none: the newest).
    SelectUp,
    /// Select the message below (past the newest: none).
    SelectDown,
}

/// What the network side reports.
#[derive(Debug, Clone, PartialEq)]
// Made per event and moved once, like `Msg`: boxing the client events (a
// message, the large variant) would allocate for every message instead.
#[allow(clippy::large_enum_variant)]
pub(crate) enum NetEvent {
    /// Logged in.
    Connected {
        /// User name.
        user: String,
        /// Rooms at log-in.
        rooms: Vec<RoomInfo>,
    },
    /// Log-in failed.
    ConnectFailed(ConnectError),
    /// An event from the client library.
    Client(ClientEvent),
    /// The room list.
    Rooms(Vec<RoomInfo>),
    /// Joined (or created) a room.
    Joined(Box<RoomInfo>),
    /// Left a room.
    Left(String),
    /// A room's members.
    Members {
        /// Room.
        room: String,
        /// Members.
        members: Vec<MemberInfo>,
    },
    /// A page of history.
    History {
        /// Whether it was asked for with `before_seq` (older page).
        older: bool,
        /// The page.
        page: MessagesOk,
    },
    /// What the server said about registration in a tenant (`None`: it
    /// could not be asked, or did not say).
    Registration {
        /// Server asked.
        server: String,
        /// Tenant asked about.
        tenant: String,
        /// Whether `register` is open there.
        open: Option<bool>,
    },
    /// The first page of a search.
    SearchResults {
        /// What was searched for.
        query: String,
        /// Hits, newest first.
        hits: Vec<SearchHit>,
        /// More hits than shown.
        more: bool,
    },
    /// [`Effect::LoadTo`] is done: `seq` of `room` is loaded (unless it
    /// is gone).
    Loaded {
        /// Room.
        room: String,
        /// The message to show.
        seq: u64,
    },
    /// A page of a thread.
    Thread {
        /// Whether it is the first page (the view opens), or one more.
        first: bool,
        /// The page.
        page: Box<crate::ThreadOk>,
    },
    /// A page of the thread of `seq` could not be fetched (the reason
    /// comes as a notice): the view may ask again.
    ThreadFailed {
        /// Room.
        room: String,
        /// The thread's message.
        seq: u64,
    },
    /// A request failed or something is worth saying: shown in the status line.
    Notice(String),
    /// A transfer moved on.
    Transfer(TransferUpdate),
    /// A send finished: committed as this seq, or failed for this reason.
    Sent {
        /// Room.
        room: String,
        /// The send's local id.
        local: u64,
        /// The seq, or why not.
        result: Result<u64, String>,
    },
    /// `quit` finished: leave the loop.
    QuitDone,
}

/// Why the log-in failed, with what the screen needs to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnectError {
    /// Unknown certificate: ask whether to trust it.
    UnknownHost {
        /// SHA-256 hex.
        fingerprint: String,
    },
    /// The pinned certificate changed: refuse, loudly.
    HostChanged {
        /// A sentence naming both fingerprints and the file.
        message: String,
        /// What the server presents now (SHA-256 hex), to pin once the
        /// operator confirms it.
        got: String,
    },
    /// The saved token was refused: ask for the password.
    TokenRefused,
    /// `register` was refused: the tenant does not allow self-registration.
    RegistrationClosed,
    /// Anything else, as a sentence.
    Other(String),
}

/// The bridge from the network side into tuirealm's event loop.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum UserEvent {
    /// A network event.
    Net(NetEvent),
}

// Events are compared only by tuirealm's subscription matching, which
// this UI does not use for network events; PartialEq is enough for that.
impl Eq for UserEvent {}

/// How to log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Login {
    /// `host:port`.
    pub(crate) server: String,
    /// Tenant.
    pub(crate) tenant: String,
    /// User.
    pub(crate) user: String,
    /// Password, or `None` to use the saved token.
    pub(crate) password: Option<String>,
    /// Register instead of logging in.
    pub(crate) register: bool,
    /// Pin an unknown certificate (the user said yes).
    pub(crate) accept_new: bool,
}

/// Work for the network side. update() only queues these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Connect and log in.
    Connect(Login),
    /// Ask the server (`hello`) whether the tenant allows registration.
    Probe {
        /// `host:port`.
        server: String,
        /// Tenant.
        tenant: String,
    },
    /// Fetch the room list.
    Rooms,
    /// Join a room.
    Join(String),
    /// Create a room.
    Create(String),
    /// Leave a room.
    Leave(String),
    /// Open (or find) the direct message with these users, then show it
    /// as [`NetEvent::Joined`].
    Dm(Vec<String>),
    /// A change to a room by its owner or a moderator; its system message
    /// arrives as an event, a refusal as a notice.
    Moderate {
        /// Room.
        room: String,
        /// What to do.
        action: ModAction,
    },
    /// Fetch a room's members.
    Members(String),
    /// Search every readable room; report [`NetEvent::SearchResults`].
    Search(String),
    /// Load older history of `room` (from before `before`, or the newest)
    /// until `seq` and a few messages before it are loaded, as pages of
    /// history; then report [`NetEvent::Loaded`].
    LoadTo {
        /// Room.
        room: String,
        /// Older than this seq; `None` from the newest.
        before: Option<u64>,
        /// The message to show.
        seq: u64,
    },
    /// Fetch a page of history (`before`: older than this seq).
    History {
        /// Room.
        room: String,
        /// Older than this seq; `None` for the newest page.
        before: Option<u64>,
    },
    /// Send text; report [`NetEvent::Sent`].
    Send {
        /// Room.
        room: String,
        /// Text.
        body: String,
        /// Names the send in the room until it is done.
        local: u64,
        /// The message it replies to.
        reply_to: Option<u64>,
    },
    /// Replace the text of one's message `seq`.
    Edit {
        /// Room.
        room: String,
        /// The message.
        seq: u64,
        /// Its new text.
        body: String,
    },
    /// Delete message `seq`.
    Delete {
        /// Room.
        room: String,
        /// The message.
        seq: u64,
    },
    /// Add (or take back) a reaction to message `seq`.
    React {
        /// Room.
        room: String,
        /// The message.
        seq: u64,
        /// The emoji.
        emoji: String,
        /// Take it back.
        remove: bool,
    },
    /// Fetch a page of the thread of message `seq`; report
    /// [`NetEvent::Thread`].
    Thread {
        /// Room.
        room: String,
        /// The message.
        seq: u64,
        /// Replies after this seq (`None`: the first page).
        after: Option<u64>,
    },
    /// Tell the room the user is typing.
    Typing(String),
    /// Move the read marker.
    MarkRead {
        /// Room.
        room: String,
        /// Seq.
        seq: u64,
    },
    /// Upload a file.
    Upload {
        /// Transfer id for progress reports.
        id: TransferId,
        /// Room.
        room: String,
        /// Path.
        path: PathBuf,
    },
    /// Download a file.
    Download {
        /// Transfer id for progress reports.
        id: TransferId,
        /// File id.
        file_id: u64,
        /// Where the file goes.
        dir: PathBuf,
    },
    /// Fetch every message after `after` (a reconnect by hand missed
    /// them), reported as pages of history.
    CatchUp {
        /// Room.
        room: String,
        /// The newest seq loaded.
        after: u64,
    },
    /// Replace the server's pinned certificate by `fingerprint` (the user
    /// checked it with the operator), then log in again like `Connect`.
    Repin {
        /// How to log in after.
        login: Login,
        /// The new certificate's SHA-256 hex.
        fingerprint: String,
    },
    /// Leave cleanly (`quit` with the reason rooms are shown), then report
    /// [`NetEvent::QuitDone`].
    Quit {
        /// Why, as the user typed it after `/quit`.
        reason: Option<String>,
    },
}
