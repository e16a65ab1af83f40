//! The UI's state, owned by the update loop: which screen, the log-in form,
//! rooms with their loaded messages and scroll anchors, members, the input
//! line, transfers, and the effects update() queued for the network side.
//! No terminal and no network here, so update() can be tested directly.

use std::path::PathBuf;

use std::time::Instant;
use tuirealm::ratatui::layout::Rect;

use crate::{ConnState, RoomInfo};

use super::app::Effect;
use super::clock::Zone;
use super::input::InputLine;
use super::keys::Keymap;
use super::layout::{self, Anchor};
use super::notify::{Alert, Notify};
pub(crate) use super::room::RoomState;
pub(crate) use super::selection::{Compose, Confirm, Picker, ThreadView};
use super::theme::Theme;
use super::timeline::EventsShown;
use super::transfer::Transfer;

/// Which screen is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Screen {
    /// The log-in form.
    Login,
    /// Rooms, messages, input.
    Main,
}

/// Log-in form fields, in order.
pub(crate) const FIELDS: [&str; 4] = ["Server", "Tenant", "User", "Password"];
/// Index of the password field.
pub(crate) const PASSWORD: usize = 3;

/// The log-in form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LoginForm {
    /// Server, tenant, user, password.
    pub(crate) fields: [String; 4],
    /// The field with the cursor.
    pub(crate) focus: usize,
    /// Create the account instead of logging in.
    pub(crate) register: bool,
    /// What the form says under the fields.
    pub(crate) status: FormStatus,
    /// Whether the tenant allows registration, as the server last said.
    pub(crate) open_registration: Registration,
    /// The server and tenant that answer is for (and that were asked about).
    pub(crate) probed: Option<[String; 2]>,
}

/// Whether the form's tenant lets users create accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registration {
    /// Not known (not asked yet, unreachable, or an older server): offered.
    Unknown,
    /// The tenant allows `register`.
    Open,
    /// It does not: the option is greyed out and Ctrl-R refuses.
    Closed,
}

impl LoginForm {
    /// The server and tenant the form names (trimmed).
    pub(crate) fn server_tenant(&self) -> [String; 2] {
        [self.fields[0].trim().to_owned(), self.fields[1].trim().to_owned()]
    }

    /// Whether registration is open for the server and tenant the form
    /// names now (what the server said about other ones does not count).
    pub(crate) fn registration(&self) -> Registration {
        if self.probed.as_ref() == Some(&self.server_tenant()) {
            self.open_registration
        } else {
            Registration::Unknown
        }
    }
}

/// The line under the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FormStatus {
    /// Nothing yet.
    Idle,
    /// Waiting for the server.
    Connecting,
    /// The last attempt failed.
    Error(String),
    /// Unknown certificate: y to trust, n to refuse.
    Trust(String),
    /// The certificate changed: refused. The sentence, and the new
    /// fingerprint (Ctrl-T offers to pin it).
    HostChanged(String, String),
    /// The user asks to replace the pin by this new fingerprint: y to
    /// pin it, n to refuse.
    Repin(String),
}

/// Now, in Unix milliseconds.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Where the last frame drew what a click or the wheel can reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Hits {
    /// The room list (empty when folded away).
    pub(crate) rooms: Rect,
    /// The message view.
    pub(crate) messages: Rect,
    /// Per row inside the message view, the file its line offers.
    pub(crate) files: Vec<Option<u64>>,
    /// Per row inside the message view, the message its line belongs to.
    pub(crate) seqs: Vec<Option<u64>>,
    /// Per row inside the overlay, the line of the overlay it shows.
    pub(crate) popup_lines: Vec<usize>,
    /// The transfers panel (empty when there is none).
    pub(crate) transfers: Rect,
    /// The overlay, when one is up.
    pub(crate) popup: Option<Rect>,
}

/// The search pane: the hits of the last `/search`, one selected; shown
/// as the overlay while `popup` holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SearchPane {
    /// What was searched for.
    pub(crate) query: String,
    /// Hits, newest first.
    pub(crate) hits: Vec<crate::SearchHit>,
    /// More hits than shown.
    pub(crate) more: bool,
    /// The hit Enter jumps to.
    pub(crate) selected: usize,
}

/// An overlay with a title and lines (help, room list, transfers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Popup {
    /// Title.
    pub(crate) title: String,
    /// Lines.
    pub(crate) lines: Vec<String>,
    /// Rows scrolled past (the scrolling keys move it while it is up).
    pub(crate) scroll: usize,
}

impl Popup {
    /// An overlay showing its first rows.
    pub(crate) fn new(title: &str, lines: Vec<String>) -> Self {
        Self { title: title.to_owned(), lines, scroll: 0 }
    }
}

/// The whole UI state.
#[derive(Debug)]
pub(crate) struct Chat {
    /// Which screen.
    pub(crate) screen: Screen,
    /// The log-in form.
    pub(crate) login: LoginForm,
    /// The identities (server, tenant, user) with a saved session token,
    /// so the form knows whether an empty password means "resume".
    pub(crate) sessions: Vec<[String; 3]>,
    /// The user logged in as.
    pub(crate) me: String,
    /// Connection state for the status line.
    pub(crate) conn: ConnState,
    /// Rooms, joined ones first then by name.
    pub(crate) rooms: Vec<RoomState>,
    /// Index of the room shown.
    pub(crate) current: Option<usize>,
    /// The input line.
    pub(crate) input: InputLine,
    /// Show the member list.
    pub(crate) show_members: bool,
    /// The overlay, if any.
    pub(crate) popup: Option<Popup>,
    /// The search pane, while its overlay is up.
    pub(crate) search: Option<SearchPane>,
    /// The last notice or error, for the status line.
    pub(crate) notice: Option<String>,
    /// What the server presented when a reconnect met a changed
    /// certificate: `/trust` pins it once the user confirms it.
    pub(crate) changed_cert: Option<String>,
    /// The main screen's key bindings.
    pub(crate) keys: Keymap,
    /// The colours.
    pub(crate) theme: Theme,
    /// Which messages alert, and how.
    pub(crate) notify: Notify,
    /// Alerts to raise after the next frame (the event loop takes them).
    pub(crate) alerts: Vec<Alert>,
    /// Completion candidates from the last Tab.
    pub(crate) candidates: Vec<String>,
    /// Transfers, oldest first.
    pub(crate) transfers: Vec<Transfer>,
    /// The next transfer id.
    pub(crate) next_transfer: u64,
    /// Where downloads go (absolute, so the user is told a real place).
    pub(crate) download_dir: PathBuf,
    /// Message view size (columns, rows), from the last draw.
    pub(crate) viewport: (usize, usize),
    /// Where the last frame put things, for the mouse.
    pub(crate) hits: Hits,
    /// Work for the network side.
    pub(crate) effects: Vec<Effect>,
    /// A quit is under way.
    pub(crate) quitting: bool,
    /// Leave the loop.
    pub(crate) quit: bool,
    /// Something changed: draw.
    pub(crate) redraw: bool,
    /// Clear the terminal before the next draw (Ctrl-L): every cell is
    /// written again, whatever the terminal made of the last frame.
    pub(crate) repaint: bool,
    /// The clock, replaceable in tests.
    pub(crate) now: fn() -> Instant,
    /// The wall clock (Unix ms) for lines made here (joins, sends), replaceable
    /// in tests.
    pub(crate) wall: fn() -> i64,
    /// How join, leave and quit lines show.
    pub(crate) events: EventsShown,
    /// Names sends until they are acknowledged.
    pub(crate) next_local: u64,
    /// The zone message times are shown in.
    pub(crate) zone: Zone,
    /// The input line writes an edit or a reply.
    pub(crate) compose: Option<Compose>,
    /// The emoji picker, while it is up.
    pub(crate) picker: Option<Picker>,
    /// A deletion asking for yes or no.
    pub(crate) confirm: Option<Confirm>,
    /// The thread view, while it is up.
    pub(crate) thread: Option<ThreadView>,
    /// When this user last said they were typing (Unix ms), and where.
    pub(crate) typing_sent: (i64, String),
    /// Tell rooms when the user types (the config file's `typing`).
    pub(crate) send_typing: bool,
}

impl Chat {
    /// A fresh UI on the log-in screen with the form prefilled, showing
    /// times in `zone`; `have_token` says a session token is saved for the
    /// prefilled identity.
    pub(crate) fn new(fields: [String; 4], register: bool, have_token: bool, zone: Zone) -> Self {
        let focus = fields.iter().position(String::is_empty).unwrap_or(PASSWORD);
        let sessions = if have_token {
            vec![[0, 1, 2].map(|i| fields[i].trim().to_owned())]
        } else {
            Vec::new()
        };
        Self {
            screen: Screen::Login,
            login: LoginForm {
                fields,
                focus,
                register,
                status: FormStatus::Idle,
                open_registration: Registration::Unknown,
                probed: None,
            },
            sessions,
            me: String::new(),
            conn: ConnState::Closed { reason: "not connected".into() },
            rooms: Vec::new(),
            current: None,
            input: InputLine::default(),
            show_members: true,
            popup: None,
            search: None,
            notice: None,
            changed_cert: None,
            keys: Keymap::default(),
            theme: Theme::default(),
            notify: Notify::default(),
            alerts: Vec::new(),
            candidates: Vec::new(),
            transfers: Vec::new(),
            next_transfer: 1,
            download_dir: PathBuf::from("."),
            viewport: (60, 20),
            hits: Hits::default(),
            effects: Vec::new(),
            quitting: false,
            quit: false,
            redraw: true,
            repaint: false,
            now: Instant::now,
            wall: wall_ms,
            events: EventsShown::Lines,
            next_local: 1,
            zone,
            compose: None,
            picker: None,
            confirm: None,
            thread: None,
            typing_sent: (0, String::new()),
            send_typing: true,
        }
    }

    /// The identity the form names (trimmed server, tenant, user).
    pub(crate) fn identity(&self) -> [String; 3] {
        [0, 1, 2].map(|i| self.login.fields[i].trim().to_owned())
    }

    /// Whether a session token is saved for the identity the form names.
    pub(crate) fn have_token(&self) -> bool {
        let id = self.identity();
        self.sessions.contains(&id)
    }

    /// The room shown.
    pub(crate) fn room(&self) -> Option<&RoomState> {
        self.current.and_then(|i| self.rooms.get(i))
    }

    /// The room shown, mutably.
    pub(crate) fn room_mut(&mut self) -> Option<&mut RoomState> {
        self.current.and_then(|i| self.rooms.get_mut(i))
    }

    /// The room on row `row` of the rooms pane (0: the first inside its
    /// border), which draws the direct messages under a heading row.
    pub(crate) fn room_at_row(&self, row: usize) -> Option<usize> {
        let first_dm = self.rooms.iter().position(RoomState::is_dm);
        let i = match first_dm {
            Some(d) if row == d => return None,
            Some(d) if row > d => row - 1,
            _ => row,
        };
        (i < self.rooms.len()).then_some(i)
    }

    /// A room's index by name.
    pub(crate) fn find(&self, name: &str) -> Option<usize> {
        self.rooms.iter().position(|r| r.info.name == name)
    }

    /// Adds or refreshes rooms from a listing, keeping loaded messages and
    /// the current room.
    pub(crate) fn merge_rooms(&mut self, infos: Vec<RoomInfo>) {
        let current = self.room().map(|r| r.info.name.clone());
        for info in infos {
            match self.find(&info.name) {
                Some(i) => {
                    let r = &mut self.rooms[i];
                    if !r.info.joined && info.joined {
                        r.marker_seq = info.read_seq;
                    }
                    // The server's marker behind ours: a `read` was lost
                    // (refresh keeps ours, so the tick would not send it
                    // again). Send it again.
                    let behind = r.info.joined && info.joined && info.read_seq < r.info.read_seq;
                    r.refresh(info, &self.me);
                    if behind {
                        let (room, seq) = (r.info.name.clone(), r.info.read_seq);
                        self.effects.push(Effect::MarkRead { room, seq });
                    }
                }
                None => self.rooms.push(RoomState::new(info)),
            }
        }
        // Rooms one is in, then rooms one could join, then the direct
        // messages (the rooms pane's DMs section), each by what it shows.
        self.rooms.sort_by(|a, b| {
            (a.is_dm(), !a.info.joined, a.title()).cmp(&(b.is_dm(), !b.info.joined, b.title()))
        });
        self.current = current
            .and_then(|n| self.find(&n))
            .or_else(|| self.rooms.iter().position(|r| r.info.joined));
    }

    /// Shows room `i`, asking for its first page and members if needed.
    /// Switching to a room puts its new-messages marker before the first
    /// message not read yet (where the user left it, not where it was when
    /// the session started).
    pub(crate) fn open_room(&mut self, i: usize) {
        if i >= self.rooms.len() {
            return;
        }
        let switched = self.current != Some(i);
        self.current = Some(i);
        if switched {
            // A thread belongs to the room it was opened in.
            self.thread = None;
        }
        let r = &mut self.rooms[i];
        r.mention = false;
        if switched {
            r.marker_seq = r.info.read_seq;
        }
        if !r.info.joined {
            return;
        }
        let name = r.info.name.clone();
        if !r.opened {
            r.opened = true;
            r.loading = true;
            self.effects.push(Effect::History { room: name.clone(), before: None });
            self.effects.push(Effect::Members(name));
        }
    }

    /// What the layout of room `r` depends on besides its items.
    pub(crate) fn ctx<'a>(&'a self, r: &RoomState, hint: &'a str) -> layout::Ctx<'a> {
        let (width, _) = self.viewport;
        layout::Ctx {
            me: &self.me,
            marker_seq: r.marker_seq,
            width,
            zone: &self.zone,
            events: self.events,
            failed_hint: hint,
            selected: r.selected,
        }
    }

    /// The keys that retry and edit a failed send, for its line.
    pub(crate) fn failed_hint(&self) -> String {
        use super::keys::Action;
        format!(
            "{} retry · {} edit",
            self.keys.hint(Action::RetryFailed),
            self.keys.hint(Action::EditFailed)
        )
    }

    /// Asks for older messages when the view is at the top of what is loaded.
    pub(crate) fn maybe_load_older(&mut self) {
        let (_, h) = self.viewport;
        let hint = self.failed_hint();
        let Some(r) = self.room() else { return };
        if r.loading || !r.more_history || !r.opened {
            return;
        }
        let at_top = layout::window(&r.items, r.anchor, h, &self.ctx(r, &hint)).at_top;
        let Some(r) = self.room_mut() else { return };
        if at_top {
            r.loading = true;
            let before = r.oldest();
            let room = r.info.name.clone();
            self.effects.push(Effect::History { room, before });
        }
    }

    /// Whether the message view shows the newest message.
    pub(crate) fn at_bottom(&self) -> bool {
        self.room().is_none_or(|r| r.anchor == Anchor::Bottom)
    }
}
