//! update(): one match from [`Msg`] to a new [`Chat`] state plus queued
//! [`Effect`]s. It never awaits and never touches the network.
//!
//! Here: the dispatch, ticks and network events; `update/` holds the
//! log-in form, the input line and commands, reconnecting by hand, the
//! overlays, the view keys and the mouse.

mod connect;
mod form;
mod input;
mod message;
mod mouse;
mod popups;
mod view;

use crate::{ChangeKind, ClientEvent, ConnState, MemberInfo, RemovedReason, RoomKind};
use qchat_protocol::MAX_UNREAD_COUNT;

use super::app::{ConnectError, Effect, Msg, NetEvent};
use super::changes;
use super::layout;
use super::model::{Chat, FormStatus, PASSWORD, Registration, RoomState, Screen};
use super::notify::Alert;
use super::timeline::EventKind;
use super::transfer::{self};

impl Chat {
    /// Applies one message.
    pub(crate) fn update(&mut self, msg: Msg) {
        self.redraw = true;
        match msg {
            Msg::Quit => self.start_quit(None),
            Msg::Redraw => {}
            Msg::Tick => self.on_tick(),
            Msg::Net(ev) => self.on_net(ev),
            Msg::Login(m) => self.on_form(m),
            Msg::Input(m) => self.on_input(m),
            Msg::View(m) => self.on_view(m),
            Msg::Mouse(m) => self.on_mouse(m),
            Msg::OnMessage(what, otherwise) => self.on_message_key(what, otherwise),
        }
    }

    /// Leaves: `quit` (with the reason the rooms are shown) when there is
    /// a connection, at once when there is none or this is the second try.
    fn start_quit(&mut self, reason: Option<String>) {
        let connected =
            self.screen == Screen::Main && !matches!(self.conn, ConnState::Closed { .. });
        if self.quitting || !connected {
            self.quit = true;
            return;
        }
        self.quitting = true;
        self.notice = Some("leaving…".into());
        self.effects.push(Effect::Quit { reason });
    }

    fn on_tick(&mut self) {
        let now = (self.now)();
        for t in &mut self.transfers {
            t.tick(now);
        }
        let before = self.transfers.len();
        self.transfers.retain(|t| t.keep(now));
        self.redraw = self.transfers.len() != before
            || self.transfers.iter().any(|t| t.status == transfer::Status::Active);
        self.redraw |= self.expire_typing();
        if self.screen != Screen::Main || !self.at_bottom() || self.popup.is_some() {
            return;
        }
        let Some(r) = self.room_mut() else { return };
        let last = r.newest().map_or(0, |m| m.seq);
        if r.info.joined && last > r.info.read_seq {
            r.info.read_seq = last;
            r.info.unread = 0;
            r.info.mentions = 0;
            r.mention = false;
            let room = r.info.name.clone();
            self.effects.push(Effect::MarkRead { room, seq: last });
            self.redraw = true;
        }
    }

    fn on_net(&mut self, ev: NetEvent) {
        match ev {
            NetEvent::Connected { user, rooms } => {
                // The network side saved this identity's token.
                let id = self.identity();
                if !self.sessions.contains(&id) {
                    self.sessions.push(id);
                }
                if self.screen == Screen::Main {
                    // A reconnect by hand (/reconnect, /trust): a new client
                    // whose events start now; fetch what the old one missed.
                    self.changed_cert = None;
                    self.notice = Some("reconnected".into());
                    for r in self.rooms.iter_mut().filter(|r| r.opened && r.info.joined) {
                        match r.newest() {
                            Some(m) => self
                                .effects
                                .push(Effect::CatchUp { room: r.info.name.clone(), after: m.seq }),
                            // Nothing loaded: the newest page when shown.
                            None => r.opened = false,
                        }
                    }
                }
                self.screen = Screen::Main;
                self.me = user;
                self.conn = ConnState::Connected;
                self.login.status = FormStatus::Idle;
                self.login.fields[PASSWORD].clear();
                self.merge_rooms(rooms);
                match self.current {
                    Some(i) => self.open_room(i),
                    None => {
                        self.notice = Some(
                            "no rooms joined yet: /join ROOM or /create ROOM (/rooms lists them)"
                                .into(),
                        )
                    }
                }
            }
            NetEvent::ConnectFailed(e) if self.screen == Screen::Main => self.reconnect_failed(e),
            NetEvent::ConnectFailed(e) => {
                // A probe that met a certificate not pinned yet may work
                // now; one refused for the certificate would fail again.
                let retry_probe = matches!(e, ConnectError::TokenRefused | ConnectError::Other(_));
                if matches!(e, ConnectError::Other(_) | ConnectError::RegistrationClosed) {
                    // Most likely a wrong password: retyped, it must not be
                    // appended to the old one.
                    self.login.fields[PASSWORD].clear();
                    self.login.focus = PASSWORD;
                }
                self.screen = Screen::Login;
                self.login.status = match e {
                    ConnectError::UnknownHost { fingerprint } => FormStatus::Trust(fingerprint),
                    ConnectError::HostChanged { message, got } => {
                        FormStatus::HostChanged(message, got)
                    }
                    ConnectError::TokenRefused => {
                        let id = self.identity();
                        self.sessions.retain(|s| *s != id);
                        self.login.focus = PASSWORD;
                        FormStatus::Error(
                            "the saved session was refused (expired or revoked) and is deleted: \
                             enter the password"
                                .into(),
                        )
                    }
                    ConnectError::RegistrationClosed => {
                        let key = self.login.server_tenant();
                        self.login.probed = Some(key);
                        self.login.open_registration = Registration::Closed;
                        self.login.register = false;
                        FormStatus::Error(form::registration_closed(&self.login.fields[1]))
                    }
                    ConnectError::Other(s) => FormStatus::Error(s),
                };
                if retry_probe && self.login.registration() == Registration::Unknown {
                    self.login.probed = None;
                    self.probe_registration();
                }
            }
            NetEvent::Registration { server, tenant, open } => {
                self.on_registration(server, tenant, open);
            }
            NetEvent::Client(ev) => self.on_client(ev),
            NetEvent::Rooms(list) => {
                self.merge_rooms(list);
                if self.popup.as_ref().is_some_and(|p| p.title == "Rooms") {
                    self.popup = Some(self.rooms_popup());
                }
            }
            NetEvent::Joined(info) => {
                let name = info.name.clone();
                self.merge_rooms(vec![*info]);
                if let Some(i) = self.find(&name) {
                    self.open_room(i);
                }
            }
            NetEvent::Left(room) => {
                if let Some(i) = self.find(&room) {
                    let r = &mut self.rooms[i];
                    r.info.joined = false;
                    r.info.unread = 0;
                    r.info.mentions = 0;
                    r.clear_loaded();
                    r.opened = false;
                    r.more_history = true;
                    r.members.clear();
                }
                let current = self.room().map(|r| r.info.name.clone());
                self.merge_rooms(Vec::new());
                if current.as_deref() == Some(room.as_str())
                    && let Some(i) = self.rooms.iter().position(|r| r.info.joined)
                {
                    self.open_room(i);
                }
                self.notice = Some(format!("left {room}"));
            }
            NetEvent::Members { room, members } => {
                if let Some(i) = self.find(&room) {
                    self.rooms[i].members = members;
                }
            }
            NetEvent::History { older, page } => {
                let Some(i) = self.find(&page.room) else { return };
                let r = &mut self.rooms[i];
                r.loading = false;
                if older || r.oldest().is_none() {
                    r.more_history = page.more;
                }
                let me = self.me.clone();
                r.insert(page.messages, &me);
            }
            NetEvent::Thread { first, page } => self.on_thread(first, *page),
            NetEvent::ThreadFailed { room, seq } => {
                if let Some(t) = self.thread.as_mut().filter(|t| t.room == room && t.root == seq) {
                    t.loading = false;
                }
            }
            NetEvent::SearchResults { query, hits, more } => {
                let pane = super::model::SearchPane { query, hits, more, selected: 0 };
                self.notice = None;
                self.popup = Some(self.search_popup(&pane));
                self.search = Some(pane);
            }
            NetEvent::Loaded { room, seq } => {
                let Some(i) = self.find(&room) else { return };
                self.rooms[i].loading = false;
                if self.current == Some(i) {
                    self.show_seq(i, seq);
                }
            }
            NetEvent::Notice(s) => self.notice = Some(s),
            NetEvent::Sent { room, local, result } => {
                let Some(i) = self.find(&room) else { return };
                match result {
                    Ok(seq) => self.rooms[i].sent(local, seq),
                    Err(why) => {
                        let hint = self.failed_hint();
                        let shown = self.rooms[i].failed(local, why.clone());
                        self.notice = Some(if shown {
                            format!("not sent to {room}: {why} ({hint})")
                        } else {
                            format!("not sent to {room}: {why}")
                        });
                    }
                }
            }
            NetEvent::Transfer(u) => {
                let now = (self.now)();
                if let Some(t) = self.transfers.iter_mut().find(|t| t.id == u.id) {
                    if let transfer::UpdateKind::Failed(why) = &u.kind {
                        self.notice = Some(format!("{}: {why}", t.name));
                    }
                    t.apply(u.kind, now);
                }
            }
            NetEvent::QuitDone => self.quit = true,
        }
    }

    fn on_client(&mut self, ev: ClientEvent) {
        match ev {
            ClientEvent::Message(m) => {
                let Some(i) = self.find(&m.room) else { return };
                self.thread_sees(&m);
                self.rooms[i].typing.retain(|(u, _)| *u != m.sender);
                if changes::target(&m).is_some() {
                    // An edit, deletion or reaction: applied to its
                    // message, never an unread line or an alert.
                    let me = self.me.clone();
                    let r = &mut self.rooms[i];
                    r.info.last_seq = r.info.last_seq.max(m.seq);
                    r.insert([m], &me);
                    return;
                }
                let current = self.current == Some(i);
                let following = current && self.at_bottom();
                let me = self.me.clone();
                let r = &mut self.rooms[i];
                let own = m.sender == me;
                // A direct message calls for the user as a mention does; so
                // does `name:` at the start of a line (the server counts
                // `@name` and `@room`).
                let direct = r.info.kind == RoomKind::Dm;
                let counted = m.mentions_user(&me);
                let mention = direct || counted || layout::mentions(&m.body, &me);
                if r.has(m.seq) {
                    return;
                }
                if own {
                    r.echo(&m.body);
                }
                // Counted as the server counts (others' text and files,
                // past the marker), unless read at once (shown at the
                // bottom: the next tick marks it read) or in the server's
                // figures already (at or below the `last_seq` of the last
                // ones: a `read` event or a room object newer than it).
                let fresh = m.seq > r.info.last_seq;
                if !following && fresh && m.seq > r.info.read_seq && m.counts_for(&me) {
                    r.info.unread = (r.info.unread + 1).min(MAX_UNREAD_COUNT);
                    // The count is the server's (`@name`, `@room`); the
                    // wider call above only colours and alerts.
                    if counted {
                        r.info.mentions = (r.info.mentions + 1).min(MAX_UNREAD_COUNT);
                    }
                    r.mention |= mention;
                }
                // Live messages only (history pages never alert), and
                // never one's own.
                if !own && self.notify.wants(mention) {
                    let text = match &m.file {
                        Some(f) => format!("[file] {}", f.name),
                        None => m.body.clone(),
                    };
                    // A DM's name is its id: say whose it is (`DM @bob`).
                    let room = match (&r.info.title, direct) {
                        (Some(t), true) => format!("DM {t}"),
                        _ => m.room.clone(),
                    };
                    self.alerts.push(Alert { room, sender: m.sender.clone(), text });
                }
                r.info.last_seq = r.info.last_seq.max(m.seq);
                // Unopened rooms load their history when shown; keep only
                // what arrives live so the first page merges cleanly.
                r.insert([m], &me);
            }
            ClientEvent::Presence(p) => {
                let ts = (self.wall)();
                let mine = p.user == self.me;
                for r in &mut self.rooms {
                    let Some(mem) = r.members.iter_mut().find(|x| x.user == p.user) else {
                        continue;
                    };
                    let changed = mem.online != p.online;
                    mem.online = p.online;
                    // A line where the user is a member, once per change;
                    // one's own other devices are not news.
                    if changed && !mine && r.info.joined {
                        let what = if p.online {
                            EventKind::Online(p.user.clone())
                        } else {
                            EventKind::Offline { user: p.user.clone(), reason: p.reason.clone() }
                        };
                        r.event(what, ts);
                    }
                }
            }
            ClientEvent::Member(ev) => {
                let Some(i) = self.find(&ev.room) else { return };
                let ts = (self.wall)();
                let r = &mut self.rooms[i];
                let what = if ev.joined {
                    EventKind::Joined(ev.user.clone())
                } else {
                    EventKind::Left(ev.user.clone())
                };
                // The server records a join or a leave (a kick, a ban) as a
                // system message just before this older event (PROTOCOL.md
                // 10.5): the message says it; a line would say it twice.
                let said = r.newest().and_then(|m| m.change.as_deref()).is_some_and(|c| {
                    c.user.as_deref() == Some(ev.user.as_str())
                        && match c.kind {
                            ChangeKind::Joined => ev.joined,
                            ChangeKind::Left | ChangeKind::Kicked | ChangeKind::Banned => {
                                !ev.joined
                            }
                            _ => false,
                        }
                });
                if !said {
                    r.event(what, ts);
                }
                r.members.retain(|x| x.user != ev.user);
                if ev.joined {
                    r.members.push(MemberInfo {
                        user: ev.user,
                        online: true,
                        role: None,
                        display_name: None,
                    });
                    r.members.sort_by(|a, b| a.user.cmp(&b.user));
                }
            }
            // A room appeared or changed for this user (invited, a DM
            // opened by someone, joined elsewhere, a new role or topic).
            ClientEvent::Room(info) => self.merge_rooms(vec![*info]),
            ClientEvent::RoomRemoved(gone) => {
                let by_id = |r: &RoomState| r.info.id.as_deref() == Some(gone.room_id.as_str());
                let Some(i) = self.find(&gone.room).or_else(|| self.rooms.iter().position(by_id))
                else {
                    return;
                };
                let ts = (self.wall)();
                let r = &mut self.rooms[i];
                let was_member = r.info.joined;
                r.info.joined = false;
                r.info.unread = 0;
                r.info.mentions = 0;
                r.info.role = None;
                r.info.invited = false;
                r.members.clear();
                // What the room showed stays, with the line that ends it;
                // a reopened room loads afresh.
                r.opened = false;
                match gone.reason {
                    RemovedReason::Left => {}
                    reason => {
                        r.event(EventKind::Removed { reason, by: gone.by.clone() }, ts);
                        let title = r.title().to_owned();
                        if was_member || self.current == Some(i) {
                            let line = EventKind::Removed { reason, by: gone.by }.text();
                            self.notice =
                                Some(format!("{title}: {}", line.trim_start_matches("⛔ ")));
                        }
                    }
                }
                // A room one may no longer see leaves the list (the one
                // shown stays, with its last line, until one moves on); a
                // public one stays, to join again (unless banned: the
                // server says so then).
                let gone_for_good = self.rooms[i].info.kind != RoomKind::Public
                    || gone.reason == RemovedReason::Deleted;
                if gone_for_good && self.current != Some(i) {
                    self.rooms.remove(i);
                    if let Some(c) = self.current.as_mut().filter(|c| **c > i) {
                        *c -= 1;
                    }
                }
                self.merge_rooms(Vec::new());
            }
            ClientEvent::Typing(t) => self.on_typing(&t),
            // The user read further on another connection: the unread
            // count follows.
            ClientEvent::Read(ev) => {
                let by_id = |r: &RoomState| r.info.id.as_deref() == Some(ev.room_id.as_str());
                let Some(i) = self.find(&ev.room).or_else(|| self.rooms.iter().position(by_id))
                else {
                    return;
                };
                let me = self.me.clone();
                let r = &mut self.rooms[i];
                let newest = r.newest().map_or(0, |m| m.seq);
                r.info.last_seq = r.info.last_seq.max(newest);
                r.follow_read(&ev, &me);
                if r.info.unread == 0 || (r.info.mentions == 0 && !r.is_dm()) {
                    r.mention = false;
                }
            }
            ClientEvent::State(s) => {
                if let ConnState::Closed { reason } = &s
                    && !self.quitting
                {
                    self.notice = Some(format!("disconnected: {reason}"));
                }
                if matches!(s, ConnState::Closed { .. }) && self.quitting {
                    self.quit = true;
                }
                // Losing and getting back the connection, in the rooms too.
                let what = match (&self.conn, &s) {
                    (ConnState::Connected, ConnState::Reconnecting { last_error, .. }) => {
                        Some(EventKind::Lost(last_error.clone()))
                    }
                    (ConnState::Reconnecting { .. }, ConnState::Connected) => Some(EventKind::Back),
                    _ => None,
                };
                if let Some(what) = what {
                    let ts = (self.wall)();
                    for r in self.rooms.iter_mut().filter(|r| r.opened && r.info.joined) {
                        r.event(what.clone(), ts);
                    }
                }
                self.conn = s;
            }
        }
    }
}
