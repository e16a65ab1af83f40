//! The input line's editing keys as the user presses them (key → keymap →
//! update), sent-line recall, the log-in form's editing, and the rough
//! edges: `/get` of several files, narrow terminals, the help listing every
//! key, transfers in full, `/reconnect` and `/trust`, Ctrl-L, `/quit REASON`.

use super::*;
use crate::tui::keys::{Action, Keymap};

/// Presses a key on the main screen, as the input box maps it.
fn press(chat: &mut Chat, code: Key, modifiers: KeyModifiers) {
    let m = key_to_msg(&chat.keys, key(code, modifiers)).expect("a bound key or a character");
    chat.update(m);
}

fn ctrl(chat: &mut Chat, c: char) {
    press(chat, Key::Char(c), KeyModifiers::CONTROL);
}

fn alt(chat: &mut Chat, c: char) {
    press(chat, Key::Char(c), KeyModifiers::ALT);
}

fn typed(chat: &mut Chat, text: &str) {
    for c in text.chars() {
        press(chat, Key::Char(c), KeyModifiers::NONE);
    }
}

/// The input line with `|` at the cursor.
fn line(chat: &Chat) -> String {
    let mut s = chat.input.text.clone();
    s.insert(chat.input.cursor, '|');
    s
}

#[test]
fn readline_keys_edit_the_input() {
    let mut chat = main_chat(conversation());
    typed(&mut chat, "please send the big report");
    ctrl(&mut chat, 'w');
    assert_eq!(line(&chat), "please send the big |");
    alt(&mut chat, 'b');
    alt(&mut chat, 'b');
    assert_eq!(line(&chat), "please send |the big ");
    alt(&mut chat, 'd');
    assert_eq!(line(&chat), "please send | big ");
    ctrl(&mut chat, 'a');
    assert_eq!(line(&chat), "|please send  big ");
    alt(&mut chat, 'f');
    assert_eq!(line(&chat), "please| send  big ");
    ctrl(&mut chat, 'k');
    assert_eq!(line(&chat), "please|", "Ctrl-K deletes to the end of the line");
    assert!(chat.transfers.is_empty() && chat.notice.is_none(), "and touches no transfer");
    ctrl(&mut chat, 'y');
    assert_eq!(line(&chat), "please send  big |", "Ctrl-Y puts it back");
    ctrl(&mut chat, 'e');
    press(&mut chat, Key::Left, KeyModifiers::CONTROL);
    assert_eq!(line(&chat), "please send  |big ", "Ctrl-Left is a word left too");
    ctrl(&mut chat, 'u');
    assert_eq!(line(&chat), "|big ");
    press(&mut chat, Key::Delete, KeyModifiers::NONE);
    press(&mut chat, Key::Right, KeyModifiers::NONE);
    press(&mut chat, Key::Backspace, KeyModifiers::NONE);
    assert_eq!(line(&chat), "|g ");
    press(&mut chat, Key::Backspace, KeyModifiers::ALT);
    ctrl(&mut chat, 'e');
    press(&mut chat, Key::Backspace, KeyModifiers::ALT);
    assert_eq!(line(&chat), "|", "Alt-Backspace deletes a word");
}

#[test]
fn up_recalls_the_last_sent_line_when_the_input_is_empty() {
    let mut chat = main_chat(conversation());
    chat.viewport = (60, 5);
    // No history yet: Up scrolls the messages, as before.
    press(&mut chat, Key::Up, KeyModifiers::NONE);
    assert_ne!(chat.room().expect("room").anchor, Anchor::Bottom);
    chat.update(Msg::View(ViewMsg::Bottom));
    typed(&mut chat, "first line");
    press(&mut chat, Key::Enter, KeyModifiers::NONE);
    typed(&mut chat, "/join random");
    press(&mut chat, Key::Enter, KeyModifiers::NONE);
    chat.effects.clear();
    press(&mut chat, Key::Up, KeyModifiers::NONE);
    assert_eq!(line(&chat), "/join random|", "commands are recalled too");
    press(&mut chat, Key::Up, KeyModifiers::NONE);
    assert_eq!(line(&chat), "first line|");
    assert_eq!(chat.room().expect("room").anchor, Anchor::Bottom, "no scrolling meanwhile");
    press(&mut chat, Key::Down, KeyModifiers::NONE);
    assert_eq!(line(&chat), "/join random|");
    press(&mut chat, Key::Down, KeyModifiers::NONE);
    assert_eq!(line(&chat), "|");
    // Recalled, edited and sent: a new entry; typed text is never replaced.
    press(&mut chat, Key::Up, KeyModifiers::NONE);
    ctrl(&mut chat, 'u');
    typed(&mut chat, "second");
    press(&mut chat, Key::Up, KeyModifiers::NONE);
    assert_eq!(line(&chat), "second|", "Up with typed text scrolls instead");
    assert_ne!(chat.room().expect("room").anchor, Anchor::Bottom);
    press(&mut chat, Key::Enter, KeyModifiers::NONE);
    assert_eq!(
        chat.effects,
        [Effect::Send { room: "general".into(), body: "second".into(), local: 2, reply_to: None }]
    );
    press(&mut chat, Key::Up, KeyModifiers::NONE);
    assert_eq!(line(&chat), "second|");
    // Shift-Up always scrolls.
    chat.update(Msg::View(ViewMsg::Bottom));
    press(&mut chat, Key::Up, KeyModifiers::SHIFT);
    assert_ne!(chat.room().expect("room").anchor, Anchor::Bottom);
}

#[test]
fn the_login_form_clears_a_field_and_a_refused_password() {
    let mut chat = Chat::new(form(), false, false, Zone::utc());
    for c in "wrong pass".chars() {
        chat.update(Msg::Login(FormMsg::Char(c)));
    }
    chat.update(Msg::Login(FormMsg::DeleteWord));
    assert_eq!(chat.login.fields[3], "wrong ");
    chat.update(Msg::Login(FormMsg::ClearField));
    assert_eq!(chat.login.fields[3], "");
    for c in "wrong".chars() {
        chat.update(Msg::Login(FormMsg::Char(c)));
    }
    chat.update(Msg::Login(FormMsg::Submit));
    chat.update(Msg::Net(NetEvent::ConnectFailed(ConnectError::Other(
        "server: unauthorized: bad user or password".into(),
    ))));
    assert_eq!(chat.login.fields[3], "", "a retyped password is not appended to the bad one");
    assert_eq!(chat.login.focus, 3);
    // A certificate question keeps it: `y` logs in with it.
    for c in "right".chars() {
        chat.update(Msg::Login(FormMsg::Char(c)));
    }
    chat.update(Msg::Login(FormMsg::Submit));
    chat.update(Msg::Net(NetEvent::ConnectFailed(ConnectError::UnknownHost {
        fingerprint: "ab".repeat(32),
    })));
    assert_eq!(chat.login.fields[3], "right");
}

#[test]
fn login_keys_map_to_form_messages() {
    use tuirealm::component::AppComponent as _;
    let mut form = super::super::components::login::LoginView::default();
    let mut on = |code, modifiers| form.on(&Event::Keyboard(KeyEvent { code, modifiers }));
    assert_eq!(on(Key::Char('u'), KeyModifiers::CONTROL), Some(Msg::Login(FormMsg::ClearField)));
    assert_eq!(on(Key::Char('w'), KeyModifiers::CONTROL), Some(Msg::Login(FormMsg::DeleteWord)));
    assert_eq!(on(Key::Char('t'), KeyModifiers::CONTROL), Some(Msg::Login(FormMsg::TrustChanged)));
    assert_eq!(on(Key::Char('u'), KeyModifiers::NONE), Some(Msg::Login(FormMsg::Char('u'))));
}

#[test]
fn get_takes_several_ids_and_says_where_they_go() {
    let mut chat = main_chat(conversation());
    chat.download_dir = "/home/ann/Downloads".into();
    type_line(&mut chat, "/get 12 #13");
    let dir = std::path::PathBuf::from("/home/ann/Downloads");
    assert_eq!(
        chat.effects,
        [
            Effect::Download { id: 1, file_id: 12, dir: dir.clone() },
            Effect::Download { id: 2, file_id: 13, dir },
        ]
    );
    assert_eq!(chat.transfers.len(), 2);
    assert_eq!(chat.notice.as_deref(), Some("downloading file 12, file 13 to /home/ann/Downloads"));
}

#[test]
fn snapshot_narrow_terminals_fold_the_side_panels() {
    let mut chat = main_chat(conversation());
    let at60 = render(&mut chat, 60, 20);
    insta::assert_snapshot!("narrow_60x20", at60);
    assert!(!at60.contains("Members"), "no member list at 60 columns:\n{at60}");
    assert!(at60.contains("Rooms"), "a narrow room list:\n{at60}");
    let at44 = render(&mut chat, 44, 16);
    insta::assert_snapshot!("narrow_44x16", at44);
    assert!(!at44.contains("Rooms") && at44.contains("general"), "{at44}");
    for row in at44.lines() {
        assert!(super::super::wrap::width(row) <= 44, "{row:?}");
    }
}

#[test]
fn the_help_lists_every_key_as_bound() {
    let mut chat = main_chat(conversation());
    chat.keys = Keymap::with(&[("clear_transfers".into(), vec!["alt-x".into()])]).expect("valid");
    chat.update(Msg::View(ViewMsg::Help));
    let popup = chat.popup.clone().expect("help");
    let text = popup.lines.join("\n");
    for action in Action::ALL {
        for k in chat.keys.keys_of(action) {
            assert!(text.contains(&k), "{k} ({}) missing from the help:\n{text}", action.name());
        }
        assert!(text.contains(action.describe()), "{}", action.name());
    }
    assert!(text.contains("Alt-X") && !text.contains("Ctrl-X"), "the rebinding shows:\n{text}");
    // The log-in form's keys too, each one the form really takes.
    use tuirealm::component::AppComponent as _;
    let mut login = super::super::components::login::LoginView::default();
    for (specs, what) in super::super::components::login::LOGIN_KEYS {
        assert!(text.contains(what), "{what} missing from the help:\n{text}");
        for spec in *specs {
            let chord = crate::tui::keys::Chord::parse(spec).expect("a key name");
            assert!(text.contains(&chord.to_string()), "{chord} missing from the help:\n{text}");
            let ev = Event::Keyboard(KeyEvent { code: chord.key, modifiers: chord.mods });
            assert!(login.on(&ev).is_some(), "the log-in form ignores {chord}");
        }
    }
    assert!(text.contains("wheel"), "the mouse:\n{text}");
    // The help is longer than the screen: the scrolling keys scroll it.
    let first = render(&mut chat, 80, 24);
    chat.update(Msg::View(ViewMsg::PageDown));
    let second = render(&mut chat, 80, 24);
    assert_ne!(first, second);
    assert!(second.contains("PgUp"), "{second}");
    chat.update(Msg::View(ViewMsg::Bottom));
    let last = render(&mut chat, 80, 24);
    assert!(last.contains("mentions"), "the last line shows:\n{last}");
    assert_eq!(chat.room().expect("room").anchor, Anchor::Bottom, "the messages did not move");
    press(&mut chat, Key::Esc, KeyModifiers::NONE);
    assert!(chat.popup.is_none());
    press(&mut chat, Key::Function(1), KeyModifiers::NONE);
    assert_eq!(chat.popup.as_ref().map(|p| p.title.as_str()), Some("Help"));
}

#[test]
fn snapshot_transfers_in_full_show_the_whole_error() {
    let mut chat = main_chat(conversation());
    with_transfers(&mut chat);
    let error = "server: forbidden: you are not a member of this room any more (left or \
                 removed); join it again to download its files";
    chat.transfers[2].apply(UpdateKind::Failed(error.into()), Instant::now());
    let panel = render(&mut chat, 80, 24);
    assert!(!panel.contains("join it again"), "the panel cuts it:\n{panel}");
    ctrl(&mut chat, 't');
    let screen = render(&mut chat, 80, 24);
    insta::assert_snapshot!("transfers_popup_80x24", screen);
    let flat: String = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("join it again to download its files"), "{screen}");
}

#[test]
fn reconnect_by_hand_logs_in_again_and_catches_up() {
    let mut chat = main_chat(conversation());
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::State(ConnState::Closed {
        reason: "server certificate changed".into(),
    }))));
    type_line(&mut chat, "/reconnect");
    assert_eq!(
        chat.effects,
        [Effect::Connect(Login {
            server: "127.0.0.1:4433".into(),
            tenant: "acme".into(),
            user: "ann".into(),
            password: None,
            register: false,
            accept_new: false,
        })]
    );
    chat.effects.clear();
    chat.update(Msg::Net(NetEvent::Connected {
        user: "ann".into(),
        rooms: vec![room("general", true, 9, 6), room("dev", true, 7, 4)],
    }));
    assert_eq!(chat.screen, Screen::Main);
    assert_eq!(
        chat.effects,
        [Effect::CatchUp { room: "general".into(), after: 6 }],
        "the loaded room fetches what the old connection missed; dev, with nothing \
         loaded, loads its newest page when shown"
    );
    assert!(!chat.rooms[chat.find("dev").expect("dev")].opened);
    assert_eq!(chat.room().map(|r| r.messages().count()), Some(6), "nothing loaded is lost");
}

#[test]
fn a_changed_certificate_is_pinned_only_with_the_fingerprint_confirmed() {
    let mut chat = main_chat(conversation());
    let new = format!("0a1b2c3d{}", "e".repeat(56));
    chat.update(Msg::Net(NetEvent::ConnectFailed(ConnectError::HostChanged {
        message: "server certificate changed".into(),
        got: new.clone(),
    })));
    assert_eq!(chat.screen, Screen::Main, "a failed reconnect keeps the main screen");
    assert!(
        chat.notice.as_deref().is_some_and(|n| n.contains("/trust 0a1b2c3d")),
        "{:?}",
        chat.notice
    );
    // The whole of it, the new fingerprint in full, in an overlay: the
    // status line has room for the way out only.
    let screen = render(&mut chat, 80, 24);
    insta::assert_snapshot!("cert_changed_80x24", screen);
    let flat: String = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains(&new) && flat.contains("/trust 0a1b2c3d"), "{screen}");
    let status = screen.lines().last().unwrap_or_default();
    assert!(status.contains("/trust 0a1b2c3d"), "the way out on the status line: {status}");
    chat.update(Msg::View(ViewMsg::Close));
    type_line(&mut chat, "/trust");
    let popup = chat.popup.as_ref().map(|p| p.lines.join(" ")).unwrap_or_default();
    assert!(popup.contains(&new), "/trust shows it again: {popup}");
    type_line(&mut chat, "/trust 0a1b");
    type_line(&mut chat, "/trust ffffffff");
    assert!(chat.effects.is_empty(), "too short or not it: nothing pinned");
    assert!(chat.notice.as_deref().is_some_and(|n| n.contains("nothing pinned")));
    type_line(&mut chat, "/trust 0A1B2C3D");
    assert!(
        matches!(&chat.effects[..], [Effect::Repin { fingerprint, login }] if *fingerprint == new && login.password.is_none()),
        "{:?}",
        chat.effects
    );
    // No changed certificate: nothing to trust.
    let mut fresh = main_chat(conversation());
    type_line(&mut fresh, "/trust 0a1b2c3d");
    assert!(fresh.effects.is_empty());
}

#[test]
fn the_login_form_pins_a_changed_certificate_after_a_second_yes() {
    let mut chat = Chat::new(form(), false, false, Zone::utc());
    chat.login.fields[3] = "pw".into();
    let new = "cd".repeat(32);
    chat.update(Msg::Net(NetEvent::ConnectFailed(ConnectError::HostChanged {
        message: "server certificate changed".into(),
        got: new.clone(),
    })));
    chat.effects.clear();
    chat.update(Msg::Login(FormMsg::TrustChanged));
    assert_eq!(chat.login.status, FormStatus::Repin(new.clone()));
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("Pin it? (y/n)") && screen.contains(&new[..32]), "{screen}");
    chat.effects.clear();
    chat.update(Msg::Login(FormMsg::Char('y')));
    assert!(
        matches!(&chat.effects[..], [Effect::Repin { fingerprint, login }] if *fingerprint == new && login.password.as_deref() == Some("pw")),
        "{:?}",
        chat.effects
    );
}

#[test]
fn ctrl_l_repaints_every_cell() {
    let mut chat = main_chat(conversation());
    ctrl(&mut chat, 'l');
    assert!(chat.repaint);
}

#[tokio::test]
async fn the_loop_clears_the_terminal_on_a_repaint() {
    use crate::tui::event_loop::Ui;
    use tuirealm::ratatui::layout::Size;
    use tuirealm::terminal::{TerminalAdapter as _, TestTerminalAdapter};
    let terminal = TestTerminalAdapter::new(Size::new(80, 24)).expect("test terminal");
    let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut ui = Ui::new(terminal, main_chat(conversation()), rx, false).expect("ui");
    assert!(ui.draw_if_needed().expect("draw"));
    // Garbage the terminal kept (a half glyph) that no diff would touch.
    let mut stray = tuirealm::ratatui::buffer::Cell::default();
    stray.set_symbol("X");
    let backend = ui.terminal.raw_mut().backend_mut();
    tuirealm::ratatui::backend::Backend::draw(backend, [(30u16, 20u16, &stray)].into_iter())
        .expect("draw");
    ui.chat.update(Msg::View(ViewMsg::Repaint));
    assert!(ui.draw_if_needed().expect("draw"));
    assert!(!ui.chat.repaint);
    let screen = super::super::headless::screen_text(ui.terminal.raw().backend().buffer());
    assert!(!screen.contains('X'), "{screen}");
}

#[test]
fn a_lone_regional_indicator_is_drawn_as_its_letter() {
    let mut msgs = conversation();
    msgs.push(msg("general", 7, "bob", "flags 🇯🇵🇫🇷 and half 🇩 one", T0 + 240_000));
    let mut chat = main_chat(msgs);
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("flags 🇯🇵🇫🇷 and half D one"), "{screen}");
    for line in screen.lines() {
        assert!(super::super::wrap::width(line) <= 80, "{line:?}");
    }
}

#[test]
fn snapshot_flags_drawn_as_their_letters() {
    // As inside tmux (config `flags`): a pair as its letters, a lone
    // indicator as its letter, the rest of the row where ratatui put it.
    super::super::wrap::set_flags_as_letters(true);
    let mut msgs = conversation();
    msgs.push(msg("general", 7, "bob", "flags 🇯🇵🇫🇷 and half 🇩 one", T0 + 240_000));
    let mut chat = main_chat(msgs);
    let screen = render(&mut chat, 80, 24);
    super::super::wrap::set_flags_as_letters(false);
    insta::assert_snapshot!("flags_letters_80x24", screen);
    assert!(screen.contains("flags [JP][FR] and half D one"), "{screen}");
    assert!(!screen.chars().any(|c| ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)), "{screen}");
    for line in screen.lines() {
        assert!(super::super::wrap::width(line) <= 80, "{line:?}");
    }
}

#[test]
fn quit_takes_a_reason() {
    let mut chat = main_chat(conversation());
    type_line(&mut chat, "/quit lunch, back at 2");
    assert_eq!(chat.effects, [Effect::Quit { reason: Some("lunch, back at 2".into()) }]);
}

#[test]
fn colours_from_the_config_reach_the_screen() {
    use tuirealm::ratatui::style::Color;
    let cfg = crate::tui::config::parse(
        "[colors]\nmention = \"#ff8800\"\nborder = \"201\"\nsenders = [\"#010203\"]\n",
    )
    .expect("valid");
    let mut chat = main_chat(conversation());
    chat.theme = cfg.theme;
    let mut app = view::App::init(EventListenerCfg::default());
    view::mount(&mut app, &chat).expect("mount");
    let mut term = Terminal::new(TestBackend::new(80, 24)).expect("terminal");
    let frame = term.draw(|f| view::draw(f, &mut app, &mut chat)).expect("draw");
    let buf = frame.buffer.clone();
    let screen = super::super::headless::screen_text(&buf);
    // The cell of the first `what` on screen.
    let cell = |what: &str| {
        let (y, row) =
            screen.lines().enumerate().find(|(_, l)| l.contains(what)).expect("on screen");
        let col = super::super::wrap::width(&row[..row.find(what).expect("in the row")]);
        buf[(u16::try_from(col).expect("small"), u16::try_from(y).expect("small"))].clone()
    };
    assert_eq!(cell("@ann ship it").fg, Color::Rgb(0xff, 0x88, 0), "the mention colour");
    assert_eq!(cell("bob      morning").fg, Color::Rgb(1, 2, 3), "the one sender colour");
    assert_eq!(cell("┌ Rooms").fg, Color::Indexed(201), "the border colour");
}
