//! Keys that move the view, switch rooms and open or close overlays.

use crate::tui::app::{Effect, ViewMsg};
use crate::tui::commands::Command;
use crate::tui::layout::{self, Anchor};
use crate::tui::model::Chat;
use crate::tui::transfer::{self};

impl Chat {
    /// Applies a view key. While an overlay is up the scrolling keys
    /// scroll it instead of the messages.
    pub(super) fn on_view(&mut self, m: ViewMsg) {
        let (_, h) = self.viewport;
        if self.picker_step(m) {
            return;
        }
        if self.popup.is_none()
            && self.thread.is_some()
            && let Some(delta) = self.thread_step(m)
        {
            self.scroll_thread(delta);
            return;
        }
        if self.search_shown()
            && let Some(pane) = &mut self.search
        {
            let last = pane.hits.len().saturating_sub(1);
            let page = h.saturating_sub(4).max(1);
            let moved = match m {
                ViewMsg::LineUp => Some(pane.selected.saturating_sub(1)),
                ViewMsg::LineDown => Some((pane.selected + 1).min(last)),
                ViewMsg::PageUp => Some(pane.selected.saturating_sub(page)),
                ViewMsg::PageDown => Some((pane.selected + page).min(last)),
                ViewMsg::Top => Some(0),
                ViewMsg::Bottom => Some(last),
                _ => None,
            };
            if let Some(to) = moved {
                pane.selected = to;
                let pane = pane.clone();
                let mut popup = self.search_popup(&pane);
                // Keep the selected line on screen.
                popup.scroll = to.saturating_sub(page);
                self.popup = Some(popup);
                return;
            }
        }
        if let Some(p) = &mut self.popup {
            let page = h.saturating_sub(3).max(1);
            let scrolled = match m {
                ViewMsg::LineUp => Some(p.scroll.saturating_sub(1)),
                ViewMsg::LineDown => Some(p.scroll + 1),
                ViewMsg::PageUp => Some(p.scroll.saturating_sub(page)),
                ViewMsg::PageDown => Some(p.scroll + page),
                ViewMsg::Top => Some(0),
                // The view clamps it to the last page.
                ViewMsg::Bottom => Some(usize::MAX / 2),
                _ => None,
            };
            if let Some(to) = scrolled {
                p.scroll = to;
                return;
            }
        }
        let hint = self.failed_hint();
        let step = |chat: &mut Self, delta: isize| {
            let Some(r) = chat.room() else { return };
            let anchor = layout::scroll(&r.items, r.anchor, delta, h, &chat.ctx(r, &hint));
            if let Some(r) = chat.room_mut() {
                r.anchor = anchor;
            }
        };
        let page = isize::try_from(h.saturating_sub(1).max(1)).unwrap_or(1);
        match m {
            ViewMsg::LineUp => step(self, -1),
            ViewMsg::LineDown => step(self, 1),
            ViewMsg::PageUp => step(self, -page),
            ViewMsg::PageDown => step(self, page),
            ViewMsg::Top => {
                if let Some(r) = self.room_mut()
                    && !r.items.is_empty()
                {
                    r.anchor = Anchor::Top { index: 0, offset: 0 };
                }
            }
            ViewMsg::Bottom => {
                if let Some(r) = self.room_mut() {
                    r.anchor = Anchor::Bottom;
                }
            }
            ViewMsg::NextRoom | ViewMsg::PrevRoom if !self.rooms.is_empty() => {
                let n = self.rooms.len();
                let cur = self.current.unwrap_or(0);
                let next = if m == ViewMsg::NextRoom { (cur + 1) % n } else { (cur + n - 1) % n };
                self.open_room(next);
            }
            ViewMsg::NextRoom | ViewMsg::PrevRoom => {}
            ViewMsg::Close => {
                let had_overlay = self.popup.is_some() || !self.candidates.is_empty();
                if let Some(c) = self.confirm.take() {
                    self.notice = Some(format!("kept {}'s message #{}", c.sender, c.seq));
                }
                self.popup = None;
                self.search = None;
                self.picker = None;
                self.candidates.clear();
                if !had_overlay {
                    self.escape();
                }
            }
            ViewMsg::SelectUp | ViewMsg::SelectDown if self.thread.is_some() => {
                self.thread_select(m == ViewMsg::SelectUp);
            }
            ViewMsg::SelectUp | ViewMsg::SelectDown => {
                let back = m == ViewMsg::SelectUp;
                let hint = self.failed_hint();
                // Scrolled back, the first selection is the lowest message
                // in view (not the newest, out of view).
                let lowest = self.room().filter(|r| r.selected.is_none() && back).and_then(|r| {
                    let w = layout::window(&r.items, r.anchor, h, &self.ctx(r, &hint));
                    let last = w.rows.iter().rev().find_map(|row| match row {
                        layout::Row::Line(l) if l.style != layout::LineStyle::System => l.seq,
                        _ => None,
                    });
                    last.filter(|_| !w.at_bottom)
                });
                let Some(r) = self.room_mut() else { return };
                match lowest {
                    Some(seq) => r.selected = Some(seq),
                    None => r.select_step(back),
                }
                let Some(seq) = r.selected else {
                    r.anchor = Anchor::Bottom;
                    return;
                };
                // Keep the selected message in view.
                let Some(index) =
                    r.items.iter().position(|it| it.msg().is_some_and(|x| x.seq == seq))
                else {
                    return;
                };
                let Some(r) = self.room() else { return };
                let ctx = self.ctx(r, &hint);
                let w = layout::window(&r.items, r.anchor, h, &ctx);
                let shown = w
                    .rows
                    .iter()
                    .any(|row| matches!(row, layout::Row::Line(l) if l.seq == Some(seq)));
                let whole = layout::rows_of(&r.items, index, &ctx).len() <= h;
                if !shown || !whole {
                    let anchor =
                        if back {
                            Anchor::Top { index, offset: 0 }
                        } else {
                            // From the bottom: the newest rows; else put it on top.
                            let bottom = layout::window(&r.items, Anchor::Bottom, h, &ctx);
                            if bottom.rows.iter().any(
                                |row| matches!(row, layout::Row::Line(l) if l.seq == Some(seq)),
                            ) {
                                Anchor::Bottom
                            } else {
                                Anchor::Top { index, offset: 0 }
                            }
                        };
                    if let Some(r) = self.room_mut() {
                        r.anchor = anchor;
                    }
                }
            }
            ViewMsg::ClearTransfers => {
                let before = self.transfers.len();
                self.transfers.retain(|t| t.status == transfer::Status::Active);
                let cleared = before - self.transfers.len();
                self.notice = Some(match cleared {
                    0 => "no finished transfers to clear".to_owned(),
                    1 => "cleared 1 finished transfer".to_owned(),
                    n => format!("cleared {n} finished transfers"),
                });
            }
            ViewMsg::Transfers => self.popup = Some(self.transfers_popup()),
            ViewMsg::Repaint => self.repaint = true,
            ViewMsg::RetryFailed => {
                let Some(r) = self.room_mut() else { return };
                let room = r.info.name.clone();
                let again = r.retry_failed();
                if again.is_empty() {
                    self.notice = Some("no failed message in this room".into());
                }
                for (local, body, reply_to) in again {
                    self.effects.push(Effect::Send { room: room.clone(), body, local, reply_to });
                }
            }
            ViewMsg::EditFailed => {
                if !self.input.text.is_empty() {
                    self.notice = Some("empty the input line first (Ctrl-U)".into());
                    return;
                }
                match self.room_mut().and_then(|r| r.take_failed()) {
                    Some(body) => self.input.set(body),
                    None => self.notice = Some("no failed message in this room".into()),
                }
            }
            ViewMsg::ToggleEvents => {
                self.events = self.events.next();
                self.notice = Some(format!("join, leave and quit lines: {}", self.events.name()));
            }
            ViewMsg::Help => self.popup = Some(self.help_popup()),
            ViewMsg::GetLatestFile => {
                let latest = self
                    .room()
                    .and_then(|r| r.messages().rev().find_map(|m| m.file.as_ref().map(|f| f.id)));
                match latest {
                    Some(id) => self.run(Command::Get(vec![id])),
                    None => self.notice = Some("no file offered in this room yet".into()),
                }
            }
        }
        self.maybe_load_older();
    }

    /// Moves the thread view's selection a message up (`back`) or down,
    /// keeping it in view.
    fn thread_select(&mut self, back: bool) {
        let (_, h) = self.viewport;
        let hint = self.failed_hint();
        let Some(t) = &mut self.thread else { return };
        t.select_step(back);
        let Some(seq) = t.selected else { return };
        let Some(t) = &self.thread else { return };
        let Some(i) = self.find(&t.room) else { return };
        let ctx =
            layout::Ctx { marker_seq: u64::MAX, selected: None, ..self.ctx(&self.rooms[i], &hint) };
        let w = layout::window(&t.items, t.anchor, h, &ctx);
        let shown =
            w.rows.iter().any(|row| matches!(row, layout::Row::Line(l) if l.seq == Some(seq)));
        let index = t.items.iter().position(|it| it.msg().is_some_and(|x| x.seq == seq));
        if let (false, Some(index), Some(t)) = (shown, index, self.thread.as_mut()) {
            t.anchor = Anchor::Top { index, offset: 0 };
        }
    }

    /// Rows a scrolling key moves the thread view (`isize::MIN`/`MAX`: to
    /// its top or bottom); `None` for other keys.
    fn thread_step(&self, m: ViewMsg) -> Option<isize> {
        let (_, h) = self.viewport;
        let page = isize::try_from(h.saturating_sub(1).max(1)).unwrap_or(1);
        Some(match m {
            ViewMsg::LineUp => -1,
            ViewMsg::LineDown => 1,
            ViewMsg::PageUp => -page,
            ViewMsg::PageDown => page,
            ViewMsg::Top => -1_000_000,
            ViewMsg::Bottom => 1_000_000,
            _ => return None,
        })
    }
}
