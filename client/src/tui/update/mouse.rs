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
            match self.hits.popup {
                Some(r) if !r.contains(at) => self.on_view(ViewMsg::Close),
                Some(r) => {
                    // Below the border, the overlay's line on that row.
                    let row = usize::from(at.y - r.y).checked_sub(1);
                    let line = row.and_then(|row| self.hits.popup_lines.get(row).copied());
                    if let Some(line) = line {
                        self.click_popup_line(line);
                    }
                }
                None => {}
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
            let seq = row.and_then(|r| hits.seqs.get(r).copied().flatten());
            let file = row.and_then(|r| hits.files.get(r).copied().flatten());
            // A click selects the message (again: unselects it), in the
            // thread view when it is up.
            if let Some(seq) = seq {
                let again = self.selected_seq() == Some(seq);
                let to = (!again).then_some(seq);
                if let Some(t) = &mut self.thread {
                    t.selected = to;
                } else if let Some(r) = self.room_mut() {
                    r.selected = to;
                }
            }
            if let Some(id) = file {
                self.run(Command::Get(vec![id]));
            }
        } else if hits.transfers.contains(at) {
            self.on_view(ViewMsg::Transfers);
        }
    }

    /// A click on line `line` of the overlay: a search hit jumps to its
    /// message, an emoji of the picker reacts with it.
    fn click_popup_line(&mut self, line: usize) {
        if self.search_shown()
            && let Some(pane) = &mut self.search
            && line < pane.hits.len()
        {
            pane.selected = line;
            self.jump_to_hit();
        } else if let Some(p) = &mut self.picker
            && let Some(i) = line.checked_sub(1).filter(|i| *i < p.matches.len())
        {
            // Line 0 is the search, then one emoji a line (when any match).
            p.selected = i;
            self.on_input(crate::tui::app::InputMsg::Submit);
        }
    }
}
