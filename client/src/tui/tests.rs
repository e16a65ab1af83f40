//! Snapshot tests of whole screens (TestBackend + insta, at 80x24 and
//! 120x40) and update-logic tests: keys to messages, messages to state and
//! effects.

use std::time::{Duration, Instant};

use crate::{
    ClientEvent, ConnState, FileInfo, MemberInfo, Message, MessageKind, MessagesOk, RoomInfo,
    SearchHit,
};
use tuirealm::event::{Event, Key, KeyEvent, KeyModifiers};
use tuirealm::listener::EventListenerCfg;
use tuirealm::ratatui::Terminal;
use tuirealm::ratatui::backend::TestBackend;

use super::app::{
    ConnectError, Effect, FormMsg, InputMsg, Login, Msg, NetEvent, UserEvent, ViewMsg,
};
use super::clock::Zone;
use super::components::{global, input::key_to_msg};
use super::layout::Anchor;
use super::model::{Chat, FormStatus, Screen};
use super::transfer::{Direction, Progress, Transfer, TransferUpdate, UpdateKind};
use super::view;

/// 2024-03-01 09:00 UTC.
const T0: i64 = 1_709_283_600_000;

fn msg(room: &str, seq: u64, sender: &str, body: &str, ts: i64) -> Message {
    Message::text(room, seq, sender, ts, body)
}

fn room(name: &str, joined: bool, last: u64, read: u64) -> RoomInfo {
    RoomInfo {
        name: name.into(),
        joined,
        last_seq: last,
        read_seq: read,
        unread: last - read,
        mentions: 0,
        id: None,
        kind: crate::RoomKind::Public,
        title: None,
        role: None,
        invited: false,
        topic: None,
        archived: false,
    }
}

fn form() -> [String; 4] {
    ["127.0.0.1:4433".into(), "acme".into(), "ann".into(), String::new()]
}

/// A logged-in UI with three rooms, `general` open, and the given messages.
fn main_chat(messages: Vec<Message>) -> Chat {
    let mut chat = Chat::new(form(), false, false, Zone::utc());
    // Lines made here (joins, sends) happen a few minutes after T0.
    chat.wall = || T0 + 600_000;
    // Typing hints are tested on their own.
    chat.send_typing = false;
    let last = messages.last().map_or(0, |m| m.seq);
    chat.update(Msg::Net(NetEvent::Connected {
        user: "ann".into(),
        rooms: vec![
            room("general", true, last, last.saturating_sub(2)),
            room("dev", true, 7, 4),
            room("random", false, 0, 0),
        ],
    }));
    let general = chat.find("general").expect("general");
    chat.open_room(general);
    chat.effects.clear();
    chat.update(Msg::Net(NetEvent::History {
        older: false,
        page: MessagesOk { room: "general".into(), messages, more: false },
    }));
    chat.update(Msg::Net(NetEvent::Members {
        room: "general".into(),
        members: vec![
            MemberInfo { user: "ann".into(), online: true, role: None, display_name: None },
            MemberInfo { user: "bob".into(), online: true, role: None, display_name: None },
            MemberInfo { user: "李雷".into(), online: false, role: None, display_name: None },
        ],
    }));
    chat
}

fn conversation() -> Vec<Message> {
    vec![
        msg("general", 1, "bob", "morning all", T0 - 86_400_000),
        msg("general", 2, "ann", "hi bob", T0),
        msg("general", 3, "bob", "did you see the release notes?", T0 + 60_000),
        msg("general", 4, "bob", "they are long", T0 + 90_000),
        msg(
            "general",
            5,
            "李雷",
            "你好！这是一条很长的中文消息，用来测试按显示宽度换行是否正确。",
            T0 + 120_000,
        ),
        msg(
            "general",
            6,
            "bob",
            "@ann ship it 🚀🎉 — 👨\u{200d}👩\u{200d}👧 family emoji and café with e\u{301} combining",
            T0 + 180_000,
        ),
    ]
}

fn render(chat: &mut Chat, w: u16, h: u16) -> String {
    let mut app = view::App::init(EventListenerCfg::default());
    view::mount(&mut app, chat).expect("mount");
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    let frame = term.draw(|f| view::draw(f, &mut app, chat)).expect("draw");
    super::headless::screen_text(frame.buffer)
}

#[test]
fn snapshot_login() {
    let mut chat = Chat::new(
        ["127.0.0.1:4433".into(), "acme".into(), "ann".into(), "secret".into()],
        false,
        false,
        Zone::utc(),
    );
    insta::assert_snapshot!("login_80x24", render(&mut chat, 80, 24));
    insta::assert_snapshot!("login_120x40", render(&mut chat, 120, 40));
}

#[test]
fn snapshot_login_trust_and_changed() {
    let mut chat = Chat::new(form(), false, false, Zone::utc());
    chat.update(Msg::Net(NetEvent::ConnectFailed(ConnectError::UnknownHost {
        fingerprint: "ab".repeat(32),
    })));
    insta::assert_snapshot!("login_trust_80x24", render(&mut chat, 80, 24));
    chat.update(Msg::Net(NetEvent::ConnectFailed(ConnectError::HostChanged {
        message: "server certificate changed: 127.0.0.1:4433 is pinned to sha256 aaaa but presented bbbb; refusing to connect".into(),
        got: "bb".repeat(32),
    })));
    insta::assert_snapshot!("login_changed_80x24", render(&mut chat, 80, 24));
}

#[test]
fn snapshot_main() {
    let mut chat = main_chat(conversation());
    // As the server sends it: the names it mentions (`@ann`) listed.
    let mut mention = msg("dev", 8, "bob", "@ann review please", T0);
    mention.mentions = Some(Box::new(vec!["ann".into()]));
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Message(mention))));
    insta::assert_snapshot!("main_80x24", render(&mut chat, 80, 24));
    insta::assert_snapshot!("main_120x40", render(&mut chat, 120, 40));
}

#[test]
fn snapshot_history_cjk_emoji_wrapping() {
    let mut msgs = conversation();
    msgs.push(msg(
        "general",
        7,
        "bob",
        &"日本語とEnglishが混ざったテキスト🙂".repeat(3),
        T0 + 240_000,
    ));
    let mut file = msg("general", 8, "bob", "report.pdf", T0 + 300_000);
    file.kind = MessageKind::File;
    file.file = Some(FileInfo {
        id: 12,
        name: "report.pdf".into(),
        size: 3 * 1024 * 1024,
        hash: "00".into(),
    });
    msgs.push(file);
    let mut chat = main_chat(msgs);
    chat.show_members = false;
    insta::assert_snapshot!("history_wrap_80x24", render(&mut chat, 80, 24));
    insta::assert_snapshot!("history_wrap_120x40", render(&mut chat, 120, 40));
}

fn with_transfers(chat: &mut Chat) {
    let t0 = Instant::now();
    let mut a = Transfer::new(1, Direction::Up, "holiday photos.zip".into(), 0, t0);
    a.apply(
        UpdateKind::Progress(Progress {
            done: 40 * 1024 * 1024,
            total: 100 * 1024 * 1024,
            moved: 40 * 1024 * 1024,
        }),
        t0 + Duration::from_secs(4),
    );
    let mut b = Transfer::new(2, Direction::Up, "notes.txt".into(), 0, t0);
    b.apply(
        UpdateKind::Progress(Progress { done: 2048, total: 2048, moved: 2048 }),
        t0 + Duration::from_secs(1),
    );
    b.apply(UpdateKind::Done("file 13".into()), t0 + Duration::from_secs(1));
    let mut c = Transfer::new(3, Direction::Down, "report.pdf".into(), 0, t0);
    c.apply(UpdateKind::Failed("server: no such file".into()), t0);
    chat.transfers = vec![a, b, c];
}

#[test]
fn snapshot_transfers_panel() {
    let mut chat = main_chat(conversation());
    with_transfers(&mut chat);
    insta::assert_snapshot!("transfers_80x24", render(&mut chat, 80, 24));
    insta::assert_snapshot!("transfers_120x40", render(&mut chat, 120, 40));
}

#[test]
fn finished_transfers_leave_the_panel_and_hidden_ones_are_counted() {
    let mut chat = main_chat(conversation());
    let t0 = Instant::now();
    let long_ago = t0.checked_sub(super::transfer::KEEP_DONE * 2).unwrap_or(t0);
    for id in 1..=8 {
        let mut t = Transfer::new(id, Direction::Up, format!("f{id}.bin"), 100, long_ago);
        match id {
            1 | 2 => t.apply(UpdateKind::Done(format!("file {id}")), long_ago),
            3 => t.apply(UpdateKind::Failed("server: quota exceeded".into()), long_ago),
            4 => t.apply(UpdateKind::Done("file 4".into()), t0),
            _ => t.apply(UpdateKind::Progress(Progress { done: 50, total: 100, moved: 50 }), t0),
        }
        chat.transfers.push(t);
    }
    // 8 rows, 5 lines: the 4 active ones and the newest finished one.
    let screen = render(&mut chat, 100, 30);
    assert!(
        screen.contains("Transfers 4 active / 8 · 3 not shown · Ctrl-X clears finished"),
        "{screen}"
    );
    assert!(screen.contains("f4.bin") && !screen.contains("f1.bin"), "{screen}");
    // A tick drops the long-done ones; the failure and the fresh one stay.
    chat.update(Msg::Tick);
    let names: Vec<&str> = chat.transfers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["f3.bin", "f4.bin", "f5.bin", "f6.bin", "f7.bin", "f8.bin"]);
    assert!(chat.redraw);
    // Ctrl-X clears every finished one, failed included.
    assert_eq!(
        keymsg(key(Key::Char('x'), KeyModifiers::CONTROL)),
        Some(Msg::View(ViewMsg::ClearTransfers))
    );
    chat.update(Msg::View(ViewMsg::ClearTransfers));
    assert_eq!(chat.transfers.len(), 4);
    assert_eq!(chat.notice.as_deref(), Some("cleared 2 finished transfers"));
    let screen = render(&mut chat, 100, 30);
    assert!(
        screen.contains("Transfers 4 active / 4 ") && !screen.contains("not shown"),
        "{screen}"
    );
}

#[test]
fn snapshot_help() {
    let mut chat = main_chat(conversation());
    chat.update(Msg::Input(InputMsg::Char('/')));
    for c in "help".chars() {
        chat.update(Msg::Input(InputMsg::Char(c)));
    }
    chat.update(Msg::Input(InputMsg::Submit));
    insta::assert_snapshot!("help_80x24", render(&mut chat, 80, 24));
}

fn key(code: Key, modifiers: KeyModifiers) -> KeyEvent {
    KeyEvent { code, modifiers }
}

/// What a key does on the main screen with the default bindings.
fn keymsg(ev: KeyEvent) -> Option<Msg> {
    key_to_msg(&super::keys::Keymap::default(), ev)
}

#[test]
fn keys_map_to_messages() {
    assert_eq!(keymsg(key(Key::Enter, KeyModifiers::NONE)), Some(Msg::Input(InputMsg::Submit)));
    assert_eq!(keymsg(key(Key::Enter, KeyModifiers::ALT)), Some(Msg::Input(InputMsg::Newline)));
    assert_eq!(
        keymsg(key(Key::Char('x'), KeyModifiers::NONE)),
        Some(Msg::Input(InputMsg::Char('x')))
    );
    assert_eq!(keymsg(key(Key::Tab, KeyModifiers::NONE)), Some(Msg::Input(InputMsg::Complete)));
    assert_eq!(keymsg(key(Key::PageUp, KeyModifiers::NONE)), Some(Msg::View(ViewMsg::PageUp)));
    assert_eq!(keymsg(key(Key::Home, KeyModifiers::NONE)), Some(Msg::View(ViewMsg::Top)));
    assert_eq!(keymsg(key(Key::End, KeyModifiers::NONE)), Some(Msg::View(ViewMsg::Bottom)));
    assert_eq!(
        keymsg(key(Key::Char('n'), KeyModifiers::CONTROL)),
        Some(Msg::View(ViewMsg::NextRoom))
    );
    let ctrl_c: Event<UserEvent> = Event::Keyboard(key(Key::Char('c'), KeyModifiers::CONTROL));
    assert_eq!(global(&ctrl_c), Some(Msg::Quit));
    assert_eq!(global(&Event::WindowResize(10, 10)), Some(Msg::Redraw));
    let net: Event<UserEvent> = Event::User(UserEvent::Net(NetEvent::QuitDone));
    assert_eq!(global(&net), Some(Msg::Net(NetEvent::QuitDone)));
}

fn type_line(chat: &mut Chat, text: &str) {
    for c in text.chars() {
        chat.update(Msg::Input(InputMsg::Char(c)));
    }
    chat.update(Msg::Input(InputMsg::Submit));
}

#[test]
fn enter_sends_to_the_current_room_with_emoji() {
    let mut chat = main_chat(conversation());
    chat.update(Msg::Input(InputMsg::Char('a')));
    chat.update(Msg::Input(InputMsg::Newline));
    type_line(&mut chat, "b :tada:");
    assert_eq!(
        chat.effects,
        [Effect::Send {
            room: "general".into(), body: "a\nb 🎉".into(), local: 1, reply_to: None
        }]
    );
    assert!(chat.input.text.is_empty());
}

#[test]
fn commands_queue_effects() {
    let mut chat = main_chat(conversation());
    type_line(&mut chat, "/join random");
    type_line(&mut chat, "/create ops");
    type_line(&mut chat, "/leave dev");
    type_line(&mut chat, "/me waves");
    assert_eq!(
        chat.effects,
        [
            Effect::Join("random".into()),
            Effect::Create("ops".into()),
            Effect::Leave("dev".into()),
            Effect::Send {
                room: "general".into(),
                body: "/me waves".into(),
                local: 1,
                reply_to: None
            },
        ]
    );
    chat.effects.clear();
    type_line(&mut chat, "/bogus");
    assert!(chat.notice.as_deref().is_some_and(|n| n.starts_with("unknown command")));
    assert_eq!(chat.input.text, "/bogus", "a bad line stays for fixing");
    assert!(chat.effects.is_empty());
}

#[test]
fn send_starts_every_upload_at_once_and_reports_failures() {
    let mut chat = main_chat(conversation());
    type_line(&mut chat, "/send a.bin \"b c.bin\"");
    assert_eq!(chat.effects.len(), 2);
    assert!(
        matches!(&chat.effects[1], Effect::Upload { id: 2, room, path } if room == "general" && path.to_str() == Some("b c.bin"))
    );
    assert_eq!(chat.transfers.len(), 2);
    chat.update(Msg::Net(NetEvent::Transfer(TransferUpdate {
        id: 1,
        kind: UpdateKind::Progress(Progress { done: 5, total: 10, moved: 5 }),
    })));
    assert_eq!(chat.transfers[0].percent(), 50);
    chat.update(Msg::Net(NetEvent::Transfer(TransferUpdate {
        id: 2,
        kind: UpdateKind::Failed("reading b c.bin: No such file or directory (os error 2)".into()),
    })));
    assert_eq!(
        chat.notice.as_deref(),
        Some("b c.bin: reading b c.bin: No such file or directory (os error 2)")
    );
}

#[test]
fn tab_completes_commands_and_members() {
    let mut chat = main_chat(conversation());
    for c in "/wh".chars() {
        chat.update(Msg::Input(InputMsg::Char(c)));
    }
    chat.update(Msg::Input(InputMsg::Complete));
    assert_eq!(chat.input.text, "/who ");
    chat.update(Msg::Input(InputMsg::KillToStart));
    for c in "hi @b".chars() {
        chat.update(Msg::Input(InputMsg::Char(c)));
    }
    chat.update(Msg::Input(InputMsg::Complete));
    assert_eq!(chat.input.text, "hi @bob ");
}

#[test]
fn ctrl_c_quits_cleanly_through_the_client() {
    let mut chat = main_chat(conversation());
    chat.update(Msg::Quit);
    assert_eq!(chat.effects, [Effect::Quit { reason: None }]);
    assert!(!chat.quit);
    chat.update(Msg::Net(NetEvent::QuitDone));
    assert!(chat.quit);
    // On the log-in screen there is nothing to close.
    let mut login = Chat::new(form(), false, false, Zone::utc());
    login.update(Msg::Quit);
    assert!(login.quit);
}

#[test]
fn login_flow_with_trust_on_first_use() {
    let mut chat = Chat::new(
        ["h:1".into(), "acme".into(), String::new(), String::new()],
        false,
        false,
        Zone::utc(),
    );
    assert_eq!(chat.login.focus, 2, "focus starts on the first empty field");
    chat.update(Msg::Login(FormMsg::Submit));
    assert_eq!(chat.login.status, FormStatus::Error("User is required".into()));
    for c in "ann".chars() {
        chat.update(Msg::Login(FormMsg::Char(c)));
    }
    chat.update(Msg::Login(FormMsg::Next));
    assert_eq!(
        chat.effects,
        [Effect::Probe { server: "h:1".into(), tenant: "acme".into() }],
        "leaving the fields asks whether acme takes registrations"
    );
    chat.effects.clear();
    chat.update(Msg::Login(FormMsg::Submit));
    assert_eq!(chat.login.status, FormStatus::Error("enter the password".into()));
    for c in "pw".chars() {
        chat.update(Msg::Login(FormMsg::Char(c)));
    }
    chat.update(Msg::Login(FormMsg::Submit));
    let login = Login {
        server: "h:1".into(),
        tenant: "acme".into(),
        user: "ann".into(),
        password: Some("pw".into()),
        register: false,
        accept_new: false,
    };
    assert_eq!(chat.effects, [Effect::Connect(login.clone())]);
    chat.effects.clear();
    chat.update(Msg::Net(NetEvent::ConnectFailed(ConnectError::UnknownHost {
        fingerprint: "ff".into(),
    })));
    assert_eq!(chat.login.status, FormStatus::Trust("ff".into()));
    chat.update(Msg::Login(FormMsg::Char('y')));
    assert_eq!(chat.effects, [Effect::Connect(Login { accept_new: true, ..login })]);
    chat.update(Msg::Net(NetEvent::Connected {
        user: "ann".into(),
        rooms: vec![room("general", true, 0, 0)],
    }));
    assert_eq!(chat.screen, Screen::Main);
    assert!(chat.login.fields[3].is_empty(), "the password is not kept");
}

#[test]
fn saved_token_logs_in_without_password_and_expiry_asks_for_it() {
    let mut chat = Chat::new(form(), false, true, Zone::utc());
    chat.update(Msg::Login(FormMsg::Submit));
    assert!(matches!(
        &chat.effects[..],
        [Effect::Connect(Login { password: None, .. }), Effect::Probe { .. }]
    ));
    chat.update(Msg::Net(NetEvent::ConnectFailed(ConnectError::TokenRefused)));
    assert!(!chat.have_token());
    assert_eq!(chat.login.focus, 3);
    assert!(
        matches!(&chat.login.status, FormStatus::Error(e) if e.contains("refused") && e.contains("enter the password")),
        "{:?}",
        chat.login.status
    );
    chat.effects.clear();
    chat.update(Msg::Login(FormMsg::Submit));
    assert!(chat.effects.is_empty(), "no second try with the deleted token");
}

#[test]
fn a_saved_token_is_used_for_whichever_identity_the_form_names() {
    // Prefilled from the last log-in (bob), with tokens saved for ann and bob.
    let mut chat = Chat::new(
        ["127.0.0.1:4433".into(), "acme".into(), "bob".into(), String::new()],
        false,
        false,
        Zone::utc(),
    );
    chat.sessions = vec![
        ["127.0.0.1:4433", "acme", "ann"].map(String::from),
        ["127.0.0.1:4433", "acme", "bob"].map(String::from),
    ];
    assert_eq!(chat.login.focus, 3, "the cursor waits on the password");
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("(saved session)"), "{screen}");
    // Switch to carl, who has no token: the password is needed.
    chat.login.focus = 2;
    for _ in 0..3 {
        chat.update(Msg::Login(FormMsg::Backspace));
    }
    for c in "carl".chars() {
        chat.update(Msg::Login(FormMsg::Char(c)));
    }
    chat.update(Msg::Login(FormMsg::Submit));
    assert_eq!(chat.login.status, FormStatus::Error("enter the password".into()));
    assert_eq!(
        chat.effects,
        [Effect::Probe { server: "127.0.0.1:4433".into(), tenant: "acme".into() }]
    );
    chat.effects.clear();
    // Back to ann: Enter resumes her session.
    assert_eq!(chat.login.focus, 3, "the error put the cursor on the password");
    chat.update(Msg::Login(FormMsg::Prev));
    for _ in 0..4 {
        chat.update(Msg::Login(FormMsg::Backspace));
    }
    for c in "ann".chars() {
        chat.update(Msg::Login(FormMsg::Char(c)));
    }
    chat.update(Msg::Login(FormMsg::Submit));
    assert!(
        matches!(&chat.effects[..], [Effect::Connect(Login { user, password: None, .. })] if user == "ann"),
        "{:?}",
        chat.effects
    );
    // A refusal forgets only ann's.
    chat.update(Msg::Net(NetEvent::ConnectFailed(ConnectError::TokenRefused)));
    assert_eq!(chat.sessions, [["127.0.0.1:4433", "acme", "bob"].map(String::from)]);
}

#[test]
fn a_password_log_in_remembers_the_session() {
    let mut chat = Chat::new(form(), false, false, Zone::utc());
    chat.login.fields[3] = "pw".into();
    chat.update(Msg::Login(FormMsg::Submit));
    chat.update(Msg::Net(NetEvent::Connected { user: "ann".into(), rooms: Vec::new() }));
    assert!(chat.have_token(), "the network side saved the token");
}

#[test]
fn registration_is_offered_only_where_the_tenant_allows_it() {
    let mut chat = Chat::new(form(), false, false, Zone::utc());
    chat.probe_registration();
    let probe = Effect::Probe { server: "127.0.0.1:4433".into(), tenant: "acme".into() };
    assert_eq!(chat.effects, [probe]);
    chat.effects.clear();
    chat.probe_registration();
    assert!(chat.effects.is_empty(), "asked once per server and tenant");
    // Unknown (e.g. an older server): offered.
    chat.update(Msg::Login(FormMsg::ToggleRegister));
    assert!(chat.login.register);
    // The answer comes: closed. The switch goes off and says why.
    let answer = |open| {
        Msg::Net(NetEvent::Registration {
            server: "127.0.0.1:4433".into(),
            tenant: "acme".into(),
            open,
        })
    };
    chat.update(answer(Some(false)));
    assert!(!chat.login.register);
    let closed = FormStatus::Error(
        "tenant acme does not allow self-registration: log in, or ask an operator for an account"
            .into(),
    );
    assert_eq!(chat.login.status, closed);
    let screen = render(&mut chat, 80, 24);
    assert!(
        screen.contains("not offered by this tenant") && !screen.contains("Ctrl-R"),
        "{screen}"
    );
    chat.login.status = FormStatus::Idle;
    chat.update(Msg::Login(FormMsg::ToggleRegister));
    assert!(!chat.login.register, "Ctrl-R refuses");
    assert_eq!(chat.login.status, closed);
    // Another tenant: unknown again until asked, and asked on leaving the field.
    chat.login.focus = 1;
    chat.update(Msg::Login(FormMsg::Char('2')));
    assert!(chat.effects.is_empty(), "not while typing the tenant");
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("[ ] create the account (Ctrl-R)"), "{screen}");
    chat.update(Msg::Login(FormMsg::Next));
    assert_eq!(
        chat.effects,
        [Effect::Probe { server: "127.0.0.1:4433".into(), tenant: "acme2".into() }]
    );
    // A late answer about acme is ignored.
    chat.update(answer(Some(false)));
    assert_eq!(chat.login.registration(), super::model::Registration::Unknown);
    chat.update(Msg::Net(NetEvent::Registration {
        server: "127.0.0.1:4433".into(),
        tenant: "acme2".into(),
        open: Some(true),
    }));
    assert_eq!(chat.login.registration(), super::model::Registration::Open);
}

#[test]
fn a_refused_register_says_the_tenant_does_not_allow_it() {
    let mut chat = Chat::new(form(), true, false, Zone::utc());
    chat.login.fields[3] = "long enough".into();
    chat.update(Msg::Login(FormMsg::Submit));
    assert!(matches!(&chat.effects[0], Effect::Connect(Login { register: true, .. })));
    chat.update(Msg::Net(NetEvent::ConnectFailed(ConnectError::RegistrationClosed)));
    assert!(!chat.login.register);
    assert_eq!(chat.login.registration(), super::model::Registration::Closed);
    assert!(
        matches!(&chat.login.status, FormStatus::Error(e) if e.starts_with("tenant acme does not allow self-registration")),
        "{:?}",
        chat.login.status
    );
}

#[test]
fn unread_counts_and_mentions() {
    let mut chat = main_chat(conversation());
    let dev = chat.find("dev").expect("dev");
    let before = chat.rooms[dev].info.unread;
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Message(msg(
        "dev", 8, "bob", "plain", T0,
    )))));
    assert_eq!(chat.rooms[dev].info.unread, before + 1);
    assert!(!chat.rooms[dev].mention);
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Message(msg(
        "dev", 9, "bob", "hey @ann", T0,
    )))));
    assert!(chat.rooms[dev].mention);
    // Duplicates are ignored.
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Message(msg(
        "dev", 9, "bob", "hey @ann", T0,
    )))));
    assert_eq!(chat.rooms[dev].info.unread, before + 2);
    // Opening the room clears the mention; the tick marks it read.
    chat.update(Msg::View(ViewMsg::PrevRoom));
    assert_eq!(chat.current, Some(dev));
    assert!(!chat.rooms[dev].mention);
}

#[test]
fn reaching_the_top_loads_older_history_and_keeps_the_view() {
    let msgs: Vec<Message> =
        (101..=200).map(|s| msg("general", s, "bob", &format!("m{s}"), T0 + s as i64)).collect();
    let mut chat = main_chat(Vec::new());
    chat.update(Msg::Net(NetEvent::History {
        older: false,
        page: MessagesOk { room: "general".into(), messages: msgs, more: true },
    }));
    chat.viewport = (60, 10);
    chat.update(Msg::View(ViewMsg::Top));
    assert_eq!(chat.effects, [Effect::History { room: "general".into(), before: Some(101) }]);
    let older: Vec<Message> =
        (1..=100).map(|s| msg("general", s, "bob", &format!("m{s}"), T0 + s as i64)).collect();
    chat.update(Msg::Net(NetEvent::History {
        older: true,
        page: MessagesOk { room: "general".into(), messages: older, more: false },
    }));
    let r = chat.room().expect("room");
    assert_eq!(r.messages().count(), 200);
    assert_eq!(r.anchor, Anchor::Top { index: 100, offset: 0 }, "still showing m101 at the top");
    assert!(!r.more_history);
    chat.update(Msg::View(ViewMsg::Bottom));
    assert_eq!(chat.room().expect("room").anchor, Anchor::Bottom);
}

#[test]
fn connection_state_reaches_the_status_line() {
    let mut chat = main_chat(conversation());
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::State(ConnState::Reconnecting {
        attempt: 2,
        last_error: "lost".into(),
    }))));
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("reconnecting (try 2)"), "{screen}");
}

#[test]
fn times_and_days_are_local() {
    let mut chat = main_chat(conversation());
    chat.zone = Zone::fixed_hours(-10);
    let screen = render(&mut chat, 80, 24);
    // 2024-03-01 09:00 UTC is 23:00 the day before at UTC-10.
    assert!(screen.contains("23:00 ann"), "{screen}");
    assert!(screen.contains("2024-02-29") && screen.contains("2024-02-28"), "{screen}");
    assert!(!screen.contains("2024-03-01"), "{screen}");
}

#[test]
fn zwj_emoji_wrap_without_losing_a_column() {
    // Minimally qualified sequences (no VS16) are laid out by ratatui as
    // the sum of their parts unless shown fully qualified; a row measured
    // one column short would lose its last glyph at the border.
    let flags = "🏳\u{200d}🌈 👩\u{200d}👩\u{200d}👧 ❤\u{200d}🔥 ".repeat(12);
    let mut msgs = conversation();
    msgs.push(msg("general", 7, "bob", &flags, T0 + 240_000));
    let mut chat = main_chat(msgs);
    chat.show_members = false;
    for (w, h) in [(80, 24), (61, 30), (120, 40)] {
        let screen = render(&mut chat, w, h);
        assert_eq!(screen.matches('🌈').count(), 12, "{w}x{h}:\n{screen}");
        assert_eq!(screen.matches('🔥').count(), 12, "{w}x{h}:\n{screen}");
        assert_eq!(screen.matches("👩\u{200d}👩\u{200d}👧").count(), 12, "{w}x{h}:\n{screen}");
        for line in screen.lines().filter(|l| l.contains('🌈')) {
            assert_eq!(super::wrap::width(line), usize::from(w), "{line:?}");
        }
    }
}

#[test]
fn the_new_messages_marker_moves_to_where_the_user_left_a_room() {
    let mut chat = main_chat(conversation());
    let dev = chat.find("dev").expect("dev");
    let dev_msgs: Vec<Message> =
        (1..=7).map(|s| msg("dev", s, "bob", &format!("d{s}"), T0 + s as i64)).collect();
    chat.update(Msg::Net(NetEvent::History {
        older: false,
        page: MessagesOk { room: "dev".into(), messages: dev_msgs, more: false },
    }));
    chat.open_room(dev);
    assert_eq!(chat.rooms[dev].marker_seq, 4, "before the first unread at log-in");
    chat.update(Msg::Tick);
    assert_eq!(chat.rooms[dev].info.read_seq, 7, "read while shown at the bottom");
    chat.update(Msg::View(ViewMsg::NextRoom));
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Message(msg(
        "dev",
        8,
        "bob",
        "while away",
        T0,
    )))));
    chat.open_room(dev);
    assert_eq!(chat.rooms[dev].marker_seq, 7);
    chat.show_members = false;
    let screen = render(&mut chat, 80, 24);
    let lines: Vec<&str> = screen.lines().collect();
    let marker = lines.iter().position(|l| l.contains("new messages")).expect("a marker");
    assert!(
        lines[marker - 1].contains("d7") && lines[marker + 1].contains("while away"),
        "{screen}"
    );
}

#[test]
fn ctrl_g_fetches_the_newest_file_offer() {
    let mut chat = main_chat(conversation());
    chat.update(Msg::View(ViewMsg::GetLatestFile));
    assert_eq!(chat.notice.as_deref(), Some("no file offered in this room yet"));
    let mut file = msg("general", 7, "bob", "report.pdf", T0 + 300_000);
    file.kind = MessageKind::File;
    file.file = Some(FileInfo { id: 12, name: "report.pdf".into(), size: 2048, hash: "00".into() });
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Message(file))));
    assert_eq!(
        keymsg(key(Key::Char('g'), KeyModifiers::CONTROL)),
        Some(Msg::View(ViewMsg::GetLatestFile))
    );
    chat.update(Msg::View(ViewMsg::GetLatestFile));
    assert_eq!(chat.effects, [Effect::Download { id: 1, file_id: 12, dir: ".".into() }]);
    assert_eq!(chat.transfers[0].name, "report.pdf");
    assert_eq!(chat.transfers[0].dir, Direction::Down);
}

#[test]
fn resizing_redraws_at_the_new_size_and_keeps_the_place() {
    let msgs: Vec<Message> =
        (1..=300).map(|s| msg("general", s, "bob", &format!("m{s}"), T0 + s as i64)).collect();
    let mut chat = main_chat(msgs);
    let mut app = view::App::init(EventListenerCfg::default());
    view::mount(&mut app, &chat).expect("mount");
    let mut term = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    term.draw(|f| view::draw(f, &mut app, &mut chat)).expect("draw");
    let small = chat.viewport;
    for _ in 0..3 {
        chat.update(Msg::View(ViewMsg::PageUp));
    }
    let anchor = chat.room().expect("room").anchor;
    term.backend_mut().resize(120, 40);
    assert_eq!(global(&Event::WindowResize(120, 40)), Some(Msg::Redraw));
    chat.update(Msg::Redraw);
    assert!(chat.redraw);
    let frame = term.draw(|f| view::draw(f, &mut app, &mut chat)).expect("draw");
    let screen = super::headless::screen_text(frame.buffer);
    assert!(chat.viewport.0 > small.0 && chat.viewport.1 > small.1, "{:?}", chat.viewport);
    assert_eq!(chat.room().expect("room").anchor, anchor, "the same message stays on top");
    assert_eq!(screen.lines().count(), 40);
    let Anchor::Top { index, .. } = anchor else { panic!("scrolled back") };
    assert!(screen.contains(&format!(" m{} ", index + 1)), "{screen}");
}

mod editing;
mod messages;
mod mouse;
mod notify;
mod people;
mod rooms;

fn hit(
    room: &str,
    seq: u64,
    sender: &str,
    excerpt: &str,
    marks: &[[u32; 2]],
    ts: i64,
) -> SearchHit {
    SearchHit {
        room: room.into(),
        room_id: format!("+{:016x}", room.len()),
        seq,
        sender: sender.into(),
        ts,
        kind: MessageKind::Text,
        excerpt: excerpt.into(),
        marks: marks.to_vec(),
    }
}

/// `/search` asks the network side, and the hits come up in the search
/// pane, the first one selected.
fn searched(chat: &mut Chat) {
    chat.effects.clear();
    type_line(chat, "/search release");
    assert_eq!(chat.effects, [Effect::Search("release".into())]);
    chat.effects.clear();
    chat.update(Msg::Net(NetEvent::SearchResults {
        query: "release".into(),
        hits: vec![
            hit("general", 3, "bob", "did you see the release notes?", &[[16, 23]], T0 + 60_000),
            hit(
                "dev",
                5,
                "李雷",
                "…the release\u{1}train leaves at noon",
                &[[7, 14]],
                T0 - 3_600_000,
            ),
        ],
        more: true,
    }));
}

#[test]
fn snapshot_search_pane() {
    let mut chat = main_chat(conversation());
    searched(&mut chat);
    insta::assert_snapshot!("search_80x24", render(&mut chat, 80, 24));
    // Down moves the selection, not the view.
    chat.update(Msg::View(ViewMsg::LineDown));
    insta::assert_snapshot!("search_second_80x24", render(&mut chat, 80, 24));
}

#[test]
fn a_search_hit_opens_its_room_at_the_message() {
    let mut chat = main_chat(conversation());
    chat.viewport = (80, 5);
    // A hit already loaded: shown at once, near the top of the view.
    searched(&mut chat);
    chat.update(Msg::Input(InputMsg::Submit));
    assert!(chat.popup.is_none() && chat.search.is_none());
    let general = chat.find("general").expect("general");
    assert_eq!(chat.current, Some(general));
    assert_eq!(chat.rooms[general].anchor, Anchor::Top { index: 0, offset: 0 });
    assert!(chat.effects.is_empty(), "{:?}", chat.effects);

    // A hit in a room never opened: the room opens and its history is
    // loaded back to the message, which is then shown.
    searched(&mut chat);
    chat.update(Msg::View(ViewMsg::LineDown));
    chat.update(Msg::Input(InputMsg::Submit));
    let dev = chat.find("dev").expect("dev");
    assert_eq!(chat.current, Some(dev));
    assert!(
        chat.effects.contains(&Effect::LoadTo { room: "dev".into(), before: None, seq: 5 }),
        "{:?}",
        chat.effects
    );
    let page: Vec<Message> =
        (1..=7).map(|s| msg("dev", s, "bob", &format!("dev {s}"), T0 + 1000 * s as i64)).collect();
    chat.update(Msg::Net(NetEvent::History {
        older: true,
        page: MessagesOk { room: "dev".into(), messages: page, more: false },
    }));
    chat.update(Msg::Net(NetEvent::Loaded { room: "dev".into(), seq: 5 }));
    assert_eq!(chat.rooms[dev].anchor, Anchor::Top { index: 2, offset: 0 });
    assert_eq!(chat.notice.as_deref(), Some("dev #5"));

    // Esc closes the pane; Enter then sends what is typed as usual.
    searched(&mut chat);
    chat.update(Msg::View(ViewMsg::Close));
    assert!(chat.search.is_none() && chat.popup.is_none());
    assert!(chat.effects.is_empty());
    let r = super::commands::parse("/search");
    assert!(r.is_err(), "{r:?}");
}
