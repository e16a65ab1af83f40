//! The input line's keys and the commands a submitted line runs.

use std::path::Path;

use crate::RoomKind;
use crate::tui::app::{Effect, InputMsg, ModAction, ViewMsg};
use crate::tui::commands::{self, Command, CompletionCtx};
use crate::tui::layout::Anchor;
use crate::tui::model::Chat;
use crate::tui::transfer::{self, Direction, Transfer};

impl Chat {
    pub(super) fn on_input(&mut self, m: InputMsg) {
        if m != InputMsg::Complete {
            self.candidates.clear();
        }
        if self.on_modal_input(m) {
            return;
        }
        match m {
            InputMsg::Char(c) => {
                // Typing leaves the selection.
                self.deselect();
                self.input.insert(c);
                self.typed();
            }
            InputMsg::Newline => self.input.insert('\n'),
            InputMsg::Backspace => self.input.backspace(),
            InputMsg::Delete => self.input.delete(),
            InputMsg::Left => self.input.left(),
            InputMsg::Right => self.input.right(),
            InputMsg::WordLeft => self.input.word_left(),
            InputMsg::WordRight => self.input.word_right(),
            InputMsg::Start => self.input.home(),
            InputMsg::End => self.input.end(),
            InputMsg::KillWordLeft => self.input.kill_word_left(),
            InputMsg::KillWordRight => self.input.kill_word_right(),
            InputMsg::KillToStart => self.input.kill_to_start(),
            InputMsg::KillToEnd => self.input.kill_to_end(),
            InputMsg::Yank => self.input.yank(),
            InputMsg::Up if self.popup.is_some() => self.on_view(ViewMsg::LineUp),
            InputMsg::Down if self.popup.is_some() => self.on_view(ViewMsg::LineDown),
            InputMsg::Up if self.input.browsing() => self.input.recall_older(),
            InputMsg::Down if self.input.recall.is_some() => self.input.recall_newer(),
            InputMsg::Up => self.on_view(ViewMsg::LineUp),
            InputMsg::Down => self.on_view(ViewMsg::LineDown),
            InputMsg::Complete => self.complete(),
            InputMsg::Submit if self.search_shown() && self.input.text.trim().is_empty() => {
                self.jump_to_hit();
            }
            InputMsg::Submit if self.submit_edit() => {}
            InputMsg::Submit => {
                let line = self.input.take();
                match commands::parse(&line) {
                    Ok(cmd) => {
                        self.input.remember(&line);
                        self.notice = None;
                        self.run(cmd);
                    }
                    Err(e) => {
                        self.notice = Some(e);
                        self.input.set(line);
                    }
                }
            }
        }
    }

    fn complete(&mut self) {
        if self.input.cursor != self.input.text.len() {
            return;
        }
        let rooms: Vec<String> = self.rooms.iter().map(|r| r.info.name.clone()).collect();
        let members: Vec<String> = self
            .room()
            .map(|r| r.members.iter().map(|m| m.user.clone()).collect())
            .unwrap_or_default();
        let users = self.known_users();
        let ctx =
            CompletionCtx { rooms: &rooms, members: &members, users: &users, list_dir: &list_dir };
        match commands::complete(&self.input.text, &ctx) {
            Some(c) => {
                self.input.set(c.line);
                self.candidates = c.candidates;
            }
            None => self.candidates.clear(),
        }
    }

    /// Carries out a parsed command.
    pub(crate) fn run(&mut self, cmd: Command) {
        let room = self.room().filter(|r| r.info.joined).map(|r| r.info.name.clone());
        let need_room = "join a room first: /join ROOM (or /rooms)";
        match cmd {
            Command::Nothing => {}
            Command::Say(body) => match room {
                Some(room) => {
                    self.say(room, body);
                }
                None => self.notice = Some(need_room.into()),
            },
            Command::Me(text) => match room {
                Some(room) => self.say(room, format!("/me {text}")),
                None => self.notice = Some(need_room.into()),
            },
            Command::Join(name) => {
                if let Some(i) = self.find(&name).filter(|&i| self.rooms[i].info.joined) {
                    self.open_room(i);
                } else {
                    self.effects.push(Effect::Join(name));
                }
            }
            Command::Leave(name) => match name.or(room) {
                Some(name) => self.effects.push(Effect::Leave(name)),
                None => self.notice = Some("which room? /leave ROOM".into()),
            },
            Command::Create(name) => self.effects.push(Effect::Create(name)),
            Command::Search(query) => {
                self.notice = Some(format!("searching for {query:?}…"));
                self.effects.push(Effect::Search(query));
            }
            Command::Dm(users) => self.effects.push(Effect::Dm(users)),
            Command::Invite(_)
            | Command::Kick { .. }
            | Command::Ban { .. }
            | Command::Topic(Some(_))
            | Command::Private(_)
                if room.is_none() =>
            {
                self.notice = Some(need_room.into());
            }
            Command::Invite(users) => {
                let room = room.unwrap_or_default();
                for user in users {
                    let action = ModAction::Invite(user);
                    self.effects.push(Effect::Moderate { room: room.clone(), action });
                }
            }
            Command::Kick { user, reason } => self.moderate(room, ModAction::Kick(user, reason)),
            Command::Ban { user, reason } => self.moderate(room, ModAction::Ban(user, reason)),
            Command::Topic(Some(topic)) => self.moderate(room, ModAction::Topic(topic)),
            Command::Private(on) => self.moderate(room, ModAction::Private(on)),
            Command::Topic(None) => {
                self.notice = Some(match self.room().and_then(|r| r.info.topic.clone()) {
                    Some(topic) => format!("topic: {topic}"),
                    None => "no topic (/topic TEXT sets one)".to_owned(),
                });
            }
            Command::Rooms => {
                self.popup = Some(self.rooms_popup());
                self.effects.push(Effect::Rooms);
            }
            Command::Who => {
                self.show_members = !self.show_members;
                if self.show_members
                    && let Some(room) = room
                {
                    self.effects.push(Effect::Members(room));
                }
            }
            Command::Send(paths) => {
                let Some(room) = room else {
                    self.notice = Some(need_room.into());
                    return;
                };
                let now = (self.now)();
                for path in paths {
                    let id = self.next_transfer;
                    self.next_transfer += 1;
                    self.transfers.push(Transfer::new(
                        id,
                        Direction::Up,
                        transfer::display_name(&path),
                        0,
                        now,
                    ));
                    self.effects.push(Effect::Upload { id, room: room.clone(), path });
                }
            }
            Command::Get(ids) => {
                let dir = self.download_dir.clone();
                let mut names = Vec::new();
                for file_id in ids {
                    let id = self.next_transfer;
                    self.next_transfer += 1;
                    let name = self.file_name(file_id);
                    names.push(name.clone());
                    self.transfers.push(Transfer::new(id, Direction::Down, name, 0, (self.now)()));
                    self.effects.push(Effect::Download { id, file_id, dir: dir.clone() });
                }
                self.notice =
                    Some(format!("downloading {} to {}", names.join(", "), dir.display()));
            }
            Command::Transfers => self.popup = Some(self.transfers_popup()),
            Command::Reconnect => self.reconnect(None),
            Command::Notify(when) => {
                if let Some(w) = when {
                    self.notify.when = w;
                }
                let n = self.notify;
                self.notice = Some(format!(
                    "alerts on {} messages · bell {} · desktop {}",
                    n.when.name(),
                    if n.bell { "on" } else { "off" },
                    n.desktop.name()
                ));
            }
            Command::Trust(confirm) => self.trust(confirm),
            Command::Quit(reason) => self.start_quit(reason),
            Command::Help => self.popup = Some(self.help_popup()),
        }
    }

    /// Asks for a change to `room` (the current one).
    fn moderate(&mut self, room: Option<String>, action: ModAction) {
        if let Some(room) = room {
            self.effects.push(Effect::Moderate { room, action });
        }
    }

    /// Every user name the client has seen, for completing `/dm` and
    /// `/invite`: members of the rooms fetched, and DM partners.
    fn known_users(&self) -> Vec<String> {
        let mut users: Vec<String> = self
            .rooms
            .iter()
            .flat_map(|r| r.members.iter().map(|m| m.user.clone()))
            .chain(self.rooms.iter().filter(|r| r.info.kind == RoomKind::Dm).flat_map(|r| {
                let title = r.info.title.as_deref().unwrap_or_default();
                title.trim_start_matches('@').split(',').map(str::to_owned).collect::<Vec<_>>()
            }))
            .filter(|u| !u.is_empty() && *u != self.me)
            .collect();
        users.sort();
        users.dedup();
        users
    }

    /// Sends `body` to `room`, showing it there as sending until the
    /// server has it.
    /// A reply being written (or the thread shown) makes it a reply.
    pub(super) fn say(&mut self, room: String, body: String) {
        let local = self.next_local;
        self.next_local += 1;
        let ts = (self.wall)();
        let reply_to = self.reply_target(&room);
        if matches!(self.compose, Some(crate::tui::model::Compose::Reply { .. })) {
            self.compose = None;
        }
        if let Some(i) = self.find(&room) {
            let r = &mut self.rooms[i];
            r.anchor = Anchor::Bottom;
            r.pending(local, body.clone(), ts, reply_to);
        }
        self.typing_sent = (0, String::new());
        self.effects.push(Effect::Send { room, body, local, reply_to });
    }

    /// The name of file `file_id` as offered in a loaded message, else
    /// `file ID`. A file id names one offer, so this is the name the file
    /// comes down under (the server's reply will say the same).
    fn file_name(&self, file_id: u64) -> String {
        self.rooms
            .iter()
            .flat_map(|r| r.messages().rev())
            .find_map(|m| m.file.as_ref().filter(|f| f.id == file_id).map(|f| f.name.clone()))
            .unwrap_or_else(|| format!("file {file_id}"))
    }
}

/// Lists a directory for path completion (names and whether each is one).
fn list_dir(dir: &Path) -> Vec<(String, bool)> {
    let Ok(rd) = std::fs::read_dir(dir) else { return Vec::new() };
    rd.filter_map(Result::ok)
        .take(1000)
        .map(|e| {
            (e.file_name().to_string_lossy().into_owned(), e.file_type().is_ok_and(|t| t.is_dir()))
        })
        .collect()
}

impl Chat {
    /// Enter in the search pane: closes it, opens the hit's room and shows
    /// the message, loading the history from the newest loaded down to a
    /// little before it first when it is not loaded.
    pub(super) fn jump_to_hit(&mut self) {
        let Some(pane) = self.search.take() else { return };
        self.popup = None;
        let Some(hit) = pane.hits.get(pane.selected) else { return };
        let Some(i) = self.find(&hit.room).filter(|&i| self.rooms[i].info.joined) else {
            self.notice = Some(format!("{} is not one of your rooms any more", hit.room));
            return;
        };
        let opened = self.rooms[i].opened;
        self.open_room(i);
        let r = &mut self.rooms[i];
        if r.has(hit.seq) {
            self.show_seq(i, hit.seq);
            return;
        }
        // Not opened before: open_room asked for the newest page; the
        // loading below starts there too and the pages merge.
        let before = if opened { r.oldest() } else { None };
        r.loading = true;
        let (room, seq) = (r.info.name.clone(), hit.seq);
        self.notice = Some(format!("loading {room} back to #{seq}…"));
        self.effects.push(Effect::LoadTo { room, before, seq });
    }

    /// Scrolls room `i` so that message `seq` shows near the top, with a
    /// few messages before it.
    pub(crate) fn show_seq(&mut self, i: usize, seq: u64) {
        let Some(r) = self.rooms.get_mut(i) else { return };
        let Some(index) = r.items.iter().position(|it| it.msg().is_some_and(|m| m.seq == seq))
        else {
            // Loading stops after a bounded number of pages: a hit further
            // back is reached by scrolling up (each top loads a page).
            let further = r.more_history && r.oldest().is_some_and(|o| o > seq);
            self.notice = Some(if further {
                format!("#{seq} is further back in {}: Home loads older messages", r.info.name)
            } else {
                format!("#{seq} is not in {} any more", r.info.name)
            });
            return;
        };
        r.anchor = Anchor::Top { index: index.saturating_sub(2), offset: 0 };
        self.notice = Some(format!("{} #{seq}", r.info.name));
    }
}
