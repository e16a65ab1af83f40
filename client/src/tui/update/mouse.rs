//! The mouse on the main screen: the wheel scrolls the messages (or the
//! overlay), a click on a room opens it, on a file offer downloads it, on
//! the transfers panel shows every transfer in full; a click beside an
//! overlay closes it. Where things are comes from the last frame.

use tuirealm::ratatui::layout::Position;

use crate::tui::app::{MouseKind, MouseMsg, ViewMsg};
use crate::tui::commands::Command;
use crate::tui::model::{Chat, Screen};

/// Rows one notch of the wheel scrolls.
const WHEEL: usize = 3;

impl Chat {
    /// Applies a mouse action.
    pub(super) fn on_mouse(&mut self, m: MouseMsg) {
        if self.screen != Screen::Main {
            return;
        }
        let at = Position { x: m.col, y: m.row };
        let wheel = match m.kind {
            MouseKind::WheelUp => Some(ViewMsg::LineUp),
            MouseKind::WheelDown => Some(ViewMsg::LineDown),
            MouseKind::Click => None,
        };
        if let Some(step) = wheel {
            // On the overlay when one is up (the view keys scroll it then).
            for _ in 0..WHEEL {
                self.on_view(step);
            }
            return;
        }
        if self.popup.is_some() {
            if self.hits.popup.is_some_and(|r| !r.contains(at)) {
                self.on_view(ViewMsg::Close);
            }
            return;
        }
        let hits = &self.hits;
        if hits.rooms.contains(at) {
            // Below the border, one room a row (and the DMs' heading).
            let row = usize::from(at.y - hits.rooms.y).checked_sub(1);
            if let Some(i) = row.and_then(|r| self.room_at_row(r)) {
                self.open_room(i);
            }
        } else if hits.messages.contains(at) {
            let row = usize::from(at.y - hits.messages.y).checked_sub(1);
            if let Some(id) = row.and_then(|r| hits.files.get(r).copied().flatten()) {
                self.run(Command::Get(vec![id]));
            }
        } else if hits.transfers.contains(at) {
            self.on_view(ViewMsg::Transfers);
        }
    }
}
