//! The overlays: help (commands and every key as bound), transfers in
//! full, the room list.

use crate::tui::commands::COMMANDS;
use crate::tui::components::login::LOGIN_KEYS;
use crate::tui::keys::{Action, Chord};
use crate::tui::layout::{self};
use crate::tui::model::{Chat, Popup, SearchPane};
use crate::tui::transfer::{self, Direction};

impl Chat {
    /// The help overlay: the commands, then every key as bound now.
    pub(super) fn help_popup(&self) -> Popup {
        let mut lines: Vec<String> = COMMANDS.iter().map(|(c, d)| format!("{c} {d}")).collect();
        lines.push(String::new());
        let keys: Vec<(String, &str)> = Action::ALL
            .iter()
            .map(|a| (self.keys.keys_of(*a).join(" "), a.describe()))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        let col = keys.iter().map(|(k, _)| k.len()).max().unwrap_or(0).min(24);
        for (k, what) in keys {
            lines.push(format!("{k:<col$} {what}"));
        }
        lines.push(String::new());
        lines.push("On the log-in screen:".to_owned());
        for (specs, what) in LOGIN_KEYS {
            let k: Vec<String> = specs
                .iter()
                .map(|s| Chord::parse(s).map_or_else(|_| (*s).to_owned(), |c| c.to_string()))
                .collect();
            lines.push(format!("{:<col$} {what}", k.join(" ")));
        }
        lines.push(String::new());
        lines.push(":tada: emoji · @name or name: at the start mentions".to_owned());
        lines.push(
            "mouse: the wheel scrolls · click a room to open it, a message to select it, a \
             file offer to download it, a search hit or an emoji to pick it, the transfers \
             to see them in full · Shift+drag selects text"
                .to_owned(),
        );
        Popup::new("Help", lines)
    }

    /// The transfers overlay: every transfer with its whole status (the
    /// panel cuts long errors off).
    pub(crate) fn transfers_popup(&self) -> Popup {
        let lines = if self.transfers.is_empty() {
            vec!["no transfers: /send FILE... uploads, /get ID downloads".to_owned()]
        } else {
            self.transfers
                .iter()
                .map(|t| {
                    let arrow = if t.dir == Direction::Up { "↑" } else { "↓" };
                    let state = match &t.status {
                        transfer::Status::Active => {
                            format!("{}% of {}", t.percent(), layout::human_bytes(t.progress.total))
                        }
                        transfer::Status::Done(d) => format!("done: {d}"),
                        transfer::Status::Failed(why) => format!("FAILED: {why}"),
                    };
                    format!("{arrow} {} — {state}", t.name)
                })
                .collect()
        };
        Popup::new("Transfers", lines)
    }

    /// The search pane as an overlay: one line per hit, `▶` before the
    /// selected one, the words found in brackets.
    pub(crate) fn search_popup(&self, pane: &SearchPane) -> Popup {
        let mut lines: Vec<String> = pane
            .hits
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let mark = if i == pane.selected { "▶" } else { " " };
                let when = format!("{} {}", self.zone.day_of(h.ts), self.zone.time_of(h.ts));
                let file = if h.kind == crate::MessageKind::File { " [file]" } else { "" };
                format!("{mark} {} #{} {} {when}{file}: {}", h.room, h.seq, h.sender, marked(h))
            })
            .collect();
        if lines.is_empty() {
            lines.push(format!("nothing found for {:?}", pane.query));
        } else if pane.more {
            lines.push("  … more: narrow the search to see older hits".to_owned());
        }
        lines.push(String::new());
        lines.push("↑/↓ choose · Enter or a click: go to the message · Esc: close".to_owned());
        Popup::new(&format!("Search: {}", pane.query), lines)
    }

    /// Whether the overlay up is the search pane.
    pub(crate) fn search_shown(&self) -> bool {
        self.search.is_some()
            && self.popup.as_ref().is_some_and(|p| p.title.starts_with("Search: "))
    }

    pub(super) fn rooms_popup(&self) -> Popup {
        let lines = if self.rooms.is_empty() {
            vec!["no rooms yet: /create ROOM".to_owned()]
        } else {
            self.rooms
                .iter()
                .map(|r| {
                    let state = if r.info.joined {
                        match r.info.mentions {
                            0 => format!("joined, {} unread", r.info.unread),
                            m => format!("joined, {} unread, {m} mention you", r.info.unread),
                        }
                    } else if r.info.invited {
                        "invited (/join accepts)".to_owned()
                    } else {
                        "not joined (/join)".to_owned()
                    };
                    let kind = match r.info.kind {
                        crate::RoomKind::Private => " · private",
                        crate::RoomKind::Dm => " · direct message",
                        _ => "",
                    };
                    let role = match r.info.role {
                        Some(crate::Role::Owner) => " · owner",
                        Some(crate::Role::Moderator) => " · moderator",
                        _ => "",
                    };
                    format!("{:<20} {state}{kind}{role}", r.title())
                })
                .collect()
        };
        Popup::new("Rooms", lines)
    }
}

/// A hit's excerpt with the words found in brackets; control characters
/// (the server replaces them already) shown as spaces.
fn marked(h: &crate::SearchHit) -> String {
    let text = &h.excerpt;
    let mut out = String::with_capacity(text.len() + 8);
    let mut at = 0usize;
    for [start, end] in &h.marks {
        let (start, end) = (*start as usize, *end as usize);
        let (Some(before), Some(word)) = (text.get(at..start), text.get(start..end)) else {
            break;
        };
        out.push_str(before);
        out.push('[');
        out.push_str(word);
        out.push(']');
        at = end;
    }
    out.push_str(text.get(at..).unwrap_or_default());
    out.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}
