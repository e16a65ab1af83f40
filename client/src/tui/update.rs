//! update(): one match from [`Msg`] to a new [`Chat`] state plus queued
//! [`Effect`]s. It never awaits and never touches the network.

use std::path::Path;

use crate::{ClientEvent, ConnState, MemberInfo};

use super::app::{ConnectError, Effect, FormMsg, InputMsg, Login, Msg, NetEvent, ViewMsg};
use super::commands::{self, COMMANDS, Command, CompletionCtx};
use super::layout::{self, Anchor};
use super::model::{Chat, FIELDS, FormStatus, PASSWORD, Popup, Registration, Screen};
use super::transfer::{self, Direction, Transfer};

impl Chat {
    /// Applies one message.
    pub(crate) fn update(&mut self, msg: Msg) {
        self.redraw = true;
        match msg {
            Msg::Quit => self.start_quit(),
            Msg::Redraw => {}
            Msg::Tick => self.on_tick(),
            Msg::Net(ev) => self.on_net(ev),
            Msg::Login(m) => self.on_form(m),
            Msg::Input(m) => self.on_input(m),
            Msg::View(m) => self.on_view(m),
        }
    }

    fn start_quit(&mut self) {
        let connected =
            self.screen == Screen::Main && !matches!(self.conn, ConnState::Closed { .. });
        if self.quitting || !connected {
            self.quit = true;
            return;
        }
        self.quitting = true;
        self.notice = Some("leaving…".into());
        self.effects.push(Effect::Quit);
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
        if self.screen != Screen::Main || !self.at_bottom() || self.popup.is_some() {
            return;
        }
        let Some(r) = self.room_mut() else { return };
        let last = r.messages.last().map_or(0, |m| m.seq);
        if r.info.joined && last > r.info.read_seq {
            r.info.read_seq = last;
            r.info.unread = 0;
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
            NetEvent::ConnectFailed(e) => {
                // A probe that met a certificate not pinned yet may work
                // now; one refused for the certificate would fail again.
                let retry_probe = matches!(e, ConnectError::TokenRefused | ConnectError::Other(_));
                self.screen = Screen::Login;
                self.login.status = match e {
                    ConnectError::UnknownHost { fingerprint } => FormStatus::Trust(fingerprint),
                    ConnectError::HostChanged { message } => FormStatus::HostChanged(message),
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
                        FormStatus::Error(registration_closed(&self.login.fields[1]))
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
                self.merge_rooms(vec![info]);
                if let Some(i) = self.find(&name) {
                    self.open_room(i);
                }
            }
            NetEvent::Left(room) => {
                if let Some(i) = self.find(&room) {
                    let r = &mut self.rooms[i];
                    r.info.joined = false;
                    r.info.unread = 0;
                    r.messages.clear();
                    r.opened = false;
                    r.more_history = true;
                    r.anchor = Anchor::Bottom;
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
                if older || r.messages.is_empty() {
                    r.more_history = page.more;
                }
                r.insert(page.messages);
            }
            NetEvent::Notice(s) => self.notice = Some(s),
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
                let current = self.current == Some(i);
                let following = current && self.at_bottom();
                let me = self.me.clone();
                let r = &mut self.rooms[i];
                let own = m.sender == me;
                let mention = layout::mentions(&m.body, &me);
                if r.messages.last().is_some_and(|l| l.seq >= m.seq)
                    && r.messages.binary_search_by_key(&m.seq, |x| x.seq).is_ok()
                {
                    return;
                }
                if !own && !following {
                    r.info.unread += 1;
                    r.mention |= mention;
                }
                r.info.last_seq = r.info.last_seq.max(m.seq);
                // Unopened rooms load their history when shown; keep only
                // what arrives live so the first page merges cleanly.
                r.insert([m]);
            }
            ClientEvent::Presence(p) => {
                for r in &mut self.rooms {
                    if let Some(mem) = r.members.iter_mut().find(|x| x.user == p.user) {
                        mem.online = p.online;
                    }
                }
            }
            ClientEvent::Member(ev) => {
                let Some(i) = self.find(&ev.room) else { return };
                let r = &mut self.rooms[i];
                r.members.retain(|x| x.user != ev.user);
                if ev.joined {
                    r.members.push(MemberInfo { user: ev.user, online: true });
                    r.members.sort_by(|a, b| a.user.cmp(&b.user));
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
                self.conn = s;
            }
        }
    }

    fn on_form(&mut self, m: FormMsg) {
        let f = &mut self.login;
        match (&f.status, m) {
            (FormStatus::Trust(_), FormMsg::Char('y' | 'Y')) => {
                let login = self.login_request(true);
                if let Some(login) = login {
                    self.login.status = FormStatus::Connecting;
                    self.effects.push(Effect::Connect(login));
                }
            }
            (FormStatus::Trust(_), FormMsg::Char('n' | 'N') | FormMsg::Cancel) => {
                f.status = FormStatus::Error("certificate not trusted; not connected".into());
            }
            (FormStatus::Trust(_) | FormStatus::Connecting, _) => {}
            (_, FormMsg::Char(c)) => f.fields[f.focus].push(c),
            (_, FormMsg::Backspace) => {
                f.fields[f.focus].pop();
            }
            (_, FormMsg::Next) => f.focus = (f.focus + 1) % FIELDS.len(),
            (_, FormMsg::Prev) => f.focus = (f.focus + FIELDS.len() - 1) % FIELDS.len(),
            (_, FormMsg::ToggleRegister) => {
                if !f.register && f.registration() == Registration::Closed {
                    f.status = FormStatus::Error(registration_closed(&f.fields[1]));
                } else {
                    f.register = !f.register;
                }
            }
            (_, FormMsg::Cancel) => {}
            (_, FormMsg::Submit) => {
                if let Some(login) = self.login_request(false) {
                    self.login.status = FormStatus::Connecting;
                    self.effects.push(Effect::Connect(login));
                }
            }
        }
        // Leaving the server or tenant field (Tab, Enter): ask the server
        // whether that tenant takes registrations, once per pair.
        if self.login.focus > 1 {
            self.probe_registration();
        }
    }

    /// Queues a `hello` about the form's tenant unless this server and
    /// tenant were asked about already (or are not filled in).
    pub(crate) fn probe_registration(&mut self) {
        let f = &mut self.login;
        let key = f.server_tenant();
        if key.iter().any(String::is_empty) || f.probed.as_ref() == Some(&key) {
            return;
        }
        f.probed = Some(key.clone());
        f.open_registration = Registration::Unknown;
        let [server, tenant] = key;
        self.effects.push(Effect::Probe { server, tenant });
    }

    fn on_registration(&mut self, server: String, tenant: String, open: Option<bool>) {
        let f = &mut self.login;
        if f.probed.as_ref() != Some(&[server, tenant]) {
            return; // an answer about fields since changed
        }
        f.open_registration = match open {
            Some(true) => Registration::Open,
            Some(false) => Registration::Closed,
            None => Registration::Unknown,
        };
        if f.register && f.open_registration == Registration::Closed {
            f.register = false;
            if f.status != FormStatus::Connecting {
                f.status = FormStatus::Error(registration_closed(&f.fields[1]));
            }
        }
    }

    /// The log-in the form describes, or `None` (with the form saying why).
    fn login_request(&mut self, accept_new: bool) -> Option<Login> {
        let f = &mut self.login;
        if let Some(i) = f.fields[..PASSWORD].iter().position(|v| v.trim().is_empty()) {
            f.status = FormStatus::Error(format!("{} is required", FIELDS[i]));
            f.focus = i;
            return None;
        }
        let have_token = self.have_token();
        let f = &mut self.login;
        let password = if f.fields[PASSWORD].is_empty() {
            if !have_token || f.register {
                f.status = FormStatus::Error("enter the password".into());
                f.focus = PASSWORD;
                return None;
            }
            None
        } else {
            Some(f.fields[PASSWORD].clone())
        };
        Some(Login {
            server: f.fields[0].trim().to_owned(),
            tenant: f.fields[1].trim().to_owned(),
            user: f.fields[2].trim().to_owned(),
            password,
            register: f.register,
            accept_new,
        })
    }

    fn on_input(&mut self, m: InputMsg) {
        if m != InputMsg::Complete {
            self.candidates.clear();
        }
        match m {
            InputMsg::Char(c) => self.input.insert(c),
            InputMsg::Newline => self.input.insert('\n'),
            InputMsg::Backspace => self.input.backspace(),
            InputMsg::Delete => self.input.delete(),
            InputMsg::Left => self.input.left(),
            InputMsg::Right => self.input.right(),
            InputMsg::Start => self.input.cursor = 0,
            InputMsg::End => self.input.cursor = self.input.text.len(),
            InputMsg::Clear => {
                self.input.take();
            }
            InputMsg::Complete => self.complete(),
            InputMsg::Submit => {
                let line = self.input.take();
                match commands::parse(&line) {
                    Ok(cmd) => {
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
        let ctx = CompletionCtx { rooms: &rooms, members: &members, list_dir: &list_dir };
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
                    if let Some(r) = self.room_mut() {
                        r.anchor = Anchor::Bottom;
                    }
                    self.effects.push(Effect::Send { room, body });
                }
                None => self.notice = Some(need_room.into()),
            },
            Command::Me(text) => match room {
                Some(room) => self.effects.push(Effect::Send { room, body: format!("/me {text}") }),
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
            Command::Get(file_id) => {
                let id = self.next_transfer;
                self.next_transfer += 1;
                // A file id names one offer, so this is the name the file
                // comes down under (the server's reply will say the same).
                let name = self
                    .rooms
                    .iter()
                    .flat_map(|r| r.messages.iter().rev())
                    .find_map(|m| {
                        m.file.as_ref().filter(|f| f.id == file_id).map(|f| f.name.clone())
                    })
                    .unwrap_or_else(|| format!("file {file_id}"));
                self.transfers.push(Transfer::new(id, Direction::Down, name, 0, (self.now)()));
                self.effects.push(Effect::Download { id, file_id });
            }
            Command::Quit => self.start_quit(),
            Command::Help => self.popup = Some(help_popup()),
        }
    }

    fn rooms_popup(&self) -> Popup {
        let lines = if self.rooms.is_empty() {
            vec!["no rooms yet: /create ROOM".to_owned()]
        } else {
            self.rooms
                .iter()
                .map(|r| {
                    let state = if r.info.joined {
                        format!("joined, {} unread", r.info.unread)
                    } else {
                        "not joined (/join)".to_owned()
                    };
                    format!("{:<20} {state}", r.info.name)
                })
                .collect()
        };
        Popup { title: "Rooms".into(), lines }
    }

    fn on_view(&mut self, m: ViewMsg) {
        let (w, h) = self.viewport;
        let me = self.me.clone();
        let zone = self.zone.clone();
        let step = |chat: &mut Self, delta: isize| {
            if let Some(r) = chat.room_mut() {
                let ctx = layout::Ctx { me: &me, marker_seq: r.marker_seq, width: w, zone: &zone };
                r.anchor = layout::scroll(&r.messages, r.anchor, delta, h, &ctx);
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
                    && !r.messages.is_empty()
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
                self.popup = None;
                self.candidates.clear();
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
            ViewMsg::GetLatestFile => {
                let latest = self.room().and_then(|r| {
                    r.messages.iter().rev().find_map(|m| m.file.as_ref().map(|f| f.id))
                });
                match latest {
                    Some(id) => self.run(Command::Get(id)),
                    None => self.notice = Some("no file offered in this room yet".into()),
                }
            }
        }
        self.maybe_load_older();
    }
}

/// What the form says when the tenant takes no registrations.
fn registration_closed(tenant: &str) -> String {
    format!(
        "tenant {} does not allow self-registration: log in, or ask an operator for an account",
        tenant.trim()
    )
}

fn help_popup() -> Popup {
    let mut lines: Vec<String> = COMMANDS.iter().map(|(c, d)| format!("{c} {d}")).collect();
    lines.extend(
        [
            "",
            "Enter send · Alt-Enter new line · Tab complete · :tada: emoji",
            "PgUp/PgDn/Home/End scroll · Up/Down one line",
            "Ctrl-N/Ctrl-P next/previous room · Ctrl-G fetch the latest file",
            "Ctrl-K clear finished transfers · Esc close · Ctrl-C quit",
        ]
        .map(str::to_owned),
    );
    Popup { title: "Help".into(), lines }
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
