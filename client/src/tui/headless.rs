//! [`HeadlessUi`]: the terminal UI's own loop (the same tuirealm
//! application, async network port, update() and view) drawing on
//! ratatui's `TestBackend` instead of a terminal. It starts logged in,
//! showing one room with a given history; client events are handed to its
//! port through [`UiEvents`], as the network side of the real UI hands
//! them; the effects update() queues (mark read, history, members) are
//! dropped, since no server is attached. For benchmarks (`qchat-bench
//! tui`) and tests.

use std::time::Duration;

use tokio::sync::mpsc;
use tuirealm::ratatui::buffer::Buffer;
use tuirealm::ratatui::layout::Size;
use tuirealm::terminal::{TerminalAdapter as _, TestTerminalAdapter};

use super::TuiError;
use super::app::{Msg, NetEvent, ViewMsg};
use super::clock::Zone;
use super::event_loop::Ui;
use super::layout;
use super::model::Chat;
use super::wrap;
use crate::{ClientEvent, Message, MessagesOk, RoomInfo};

/// Hands client events to a [`HeadlessUi`]'s network port. Cheap to clone;
/// usable from any thread or task.
#[derive(Debug, Clone)]
pub struct UiEvents {
    tx: mpsc::UnboundedSender<NetEvent>,
}

impl UiEvents {
    /// Hands `ev` to the UI's port, as the real UI's network side does with
    /// each event from [`Events`](crate::Events). `false` once the UI is
    /// gone.
    pub fn send(&self, ev: ClientEvent) -> bool {
        self.tx.send(NetEvent::Client(ev)).is_ok()
    }
}

/// A scrolling key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scroll {
    /// Up: one row back.
    LineUp,
    /// PgUp.
    PageUp,
    /// PgDn.
    PageDown,
    /// Home: the oldest loaded message.
    Top,
    /// End: the newest message.
    Bottom,
}

/// The terminal UI without a terminal or a server (see the module docs).
pub struct HeadlessUi {
    ui: Ui<TestTerminalAdapter>,
    events: UiEvents,
}

impl HeadlessUi {
    /// A UI logged in as `me`, showing `room` with `history` loaded (through
    /// the same history path a first page takes), drawing on a
    /// `width`×`height` screen, times in the machine's zone. Its port runs
    /// on the current tokio runtime; [`HeadlessUi::turn`] blocks, so turn
    /// it on a thread of its own (or in `spawn_blocking`).
    ///
    /// # Errors
    /// Not within a tokio runtime, or the UI could not be mounted.
    pub fn new(
        me: &str,
        room: RoomInfo,
        history: Vec<Message>,
        width: u16,
        height: u16,
    ) -> Result<Self, TuiError> {
        let fields = ["headless".to_owned(), "headless".to_owned(), me.to_owned(), String::new()];
        let mut chat = Chat::new(fields, false, false, Zone::system());
        let name = room.name.clone();
        chat.update(Msg::Net(NetEvent::Connected { user: me.to_owned(), rooms: vec![room] }));
        chat.update(Msg::Net(NetEvent::History {
            older: false,
            page: MessagesOk { room: name, messages: history, more: false },
        }));
        chat.effects.clear();
        let terminal = TestTerminalAdapter::new(Size::new(width, height))
            .map_err(TuiError::terminal("test terminal"))?;
        let (tx, rx) = mpsc::unbounded_channel();
        let ui = Ui::new(terminal, chat, rx, false)?;
        Ok(Self { ui, events: UiEvents { tx } })
    }

    /// A handle that feeds client events to this UI.
    pub fn events(&self) -> UiEvents {
        self.events.clone()
    }

    /// One turn of the loop `qchat` runs: waits up to `wait` for events
    /// (the port, ticks), applies them, drops the effects they queued, and
    /// draws if anything changed. Returns whether it drew a frame.
    ///
    /// # Errors
    /// Reading events or drawing failed.
    pub fn turn(&mut self, wait: Duration) -> Result<bool, TuiError> {
        self.ui.pump(wait)?;
        self.ui.chat.effects.clear();
        self.ui.draw_if_needed()
    }

    /// Draws the whole screen again, every cell rewritten (as after a
    /// resize), whether or not anything changed.
    ///
    /// # Errors
    /// Drawing failed.
    pub fn redraw(&mut self) -> Result<(), TuiError> {
        self.ui.terminal.clear_screen().map_err(TuiError::terminal("clearing"))?;
        self.ui.chat.redraw = true;
        self.ui.draw_if_needed().map(drop)
    }

    /// Presses a scrolling key (applied now, drawn by the next turn or
    /// redraw).
    pub fn scroll(&mut self, key: Scroll) {
        let m = match key {
            Scroll::LineUp => ViewMsg::LineUp,
            Scroll::PageUp => ViewMsg::PageUp,
            Scroll::PageDown => ViewMsg::PageDown,
            Scroll::Top => ViewMsg::Top,
            Scroll::Bottom => ViewMsg::Bottom,
        };
        self.ui.chat.update(Msg::View(m));
        self.ui.chat.effects.clear();
    }

    /// Whether the view shows the first loaded message.
    pub fn at_top(&self) -> bool {
        let chat = &self.ui.chat;
        let Some(r) = chat.room() else { return true };
        let (_, h) = chat.viewport;
        let hint = chat.failed_hint();
        layout::window(&r.items, r.anchor, h, &chat.ctx(r, &hint)).at_top
    }

    /// Messages loaded in the room shown.
    pub fn loaded(&self) -> usize {
        self.ui.chat.room().map_or(0, |r| r.messages().count())
    }

    /// The last frame as text: one line per row, trailing spaces trimmed.
    pub fn screen(&self) -> String {
        screen_text(self.ui.terminal.raw().backend().buffer())
    }
}

/// A buffer as text, one line per row, wide glyphs counted once (the cell
/// after a two-column glyph is its continuation, not a space).
pub(crate) fn screen_text(buf: &Buffer) -> String {
    let area = buf.area;
    let mut out = String::new();
    for y in area.top()..area.bottom() {
        let mut line = String::new();
        let mut x = area.left();
        while x < area.right() {
            let sym = buf.cell((x, y)).map_or(" ", |c| c.symbol());
            line.push_str(sym);
            x += u16::try_from(wrap::width(sym).max(1)).unwrap_or(1);
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}
