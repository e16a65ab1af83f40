//! The overlays: help (commands and every key as bound), transfers in
//! full, the room list.

use crate::tui::commands::COMMANDS;
use crate::tui::components::login::LOGIN_KEYS;
use crate::tui::keys::{Action, Chord};
use crate::tui::layout::{self};
use crate::tui::model::{Chat, Popup};
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
            "mouse: the wheel scrolls · click a room to open it, a file offer to download \
             it, the transfers to see them in full · Shift+drag selects text"
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

    pub(super) fn rooms_popup(&self) -> Popup {
        let lines = if self.rooms.is_empty() {
            vec!["no rooms yet: /create ROOM".to_owned()]
        } else {
            self.rooms
                .iter()
                .map(|r| {
                    let state = if r.info.joined {
                        format!("joined, {} unread", r.info.unread)
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
