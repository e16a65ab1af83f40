//! Mentions and alerts: which live messages queue an alert (`@ann`,
//! `ann:` at the start of a line, a direct message, everything with
//! `/notify all`, nothing with `/notify none`), the loop handing them to
//! the terminal once after a frame, and the status line showing a muted
//! setting.

use std::sync::{Arc, Mutex};

use super::*;
use crate::tui::notify::{Alert, Desktop, Notify};

fn live(chat: &mut Chat, room: &str, seq: u64, sender: &str, body: &str) {
    let m = msg(room, seq, sender, body, T0 + seq as i64 * 1000);
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Message(m))));
}

#[test]
fn mentions_in_any_room_alert_and_nothing_else_does() {
    let mut chat = main_chat(conversation());
    live(&mut chat, "general", 7, "bob", "ann: lunch?");
    live(&mut chat, "dev", 8, "bob", "see @ann's patch? no: see @ann");
    live(&mut chat, "dev", 9, "bob", "anna: not you");
    live(&mut chat, "general", 10, "ann", "ann: a note to self");
    live(&mut chat, "general", 11, "bob", "plain talk");
    assert_eq!(
        chat.alerts,
        [
            Alert { room: "general".into(), sender: "bob".into(), text: "ann: lunch?".into() },
            Alert {
                room: "dev".into(),
                sender: "bob".into(),
                text: "see @ann's patch? no: see @ann".into()
            },
        ]
    );
    assert!(chat.rooms[chat.find("dev").expect("dev")].mention, "the room list marks it");
    // A page of history, even full of mentions, is not news.
    chat.alerts.clear();
    chat.update(Msg::Net(NetEvent::History {
        older: true,
        page: MessagesOk {
            room: "dev".into(),
            messages: vec![msg("dev", 1, "bob", "ann: old news", T0)],
            more: false,
        },
    }));
    assert!(chat.alerts.is_empty());
}

#[test]
fn a_direct_message_alerts_like_a_mention() {
    let mut chat = main_chat(conversation());
    let mut dm = room("+00000000000000d1", true, 0, 0);
    dm.kind = crate::RoomKind::Dm;
    dm.title = Some("@bob".into());
    dm.id = Some("+00000000000000d1".into());
    chat.merge_rooms(vec![dm]);
    live(&mut chat, "+00000000000000d1", 1, "bob", "got a minute?");
    live(&mut chat, "+00000000000000d1", 2, "ann", "sure");
    live(&mut chat, "general", 7, "bob", "plain talk");
    assert_eq!(
        chat.alerts,
        [Alert { room: "DM @bob".into(), sender: "bob".into(), text: "got a minute?".into() }],
        "the DM, not her own reply nor plain talk in a room"
    );
    let i = chat.find("+00000000000000d1").expect("the DM");
    assert!(chat.rooms[i].mention, "the room list marks it");
    chat.alerts.clear();
    type_line(&mut chat, "/notify none");
    live(&mut chat, "+00000000000000d1", 3, "bob", "hello?");
    assert!(chat.alerts.is_empty(), "muted is muted");
}

#[test]
fn notify_all_and_none_change_what_alerts() {
    let mut chat = main_chat(conversation());
    type_line(&mut chat, "/notify all");
    live(&mut chat, "general", 7, "bob", "plain talk");
    assert_eq!(chat.alerts.len(), 1);
    let mut file = msg("general", 8, "bob", "x", T0);
    file.kind = MessageKind::File;
    file.file = Some(FileInfo { id: 3, name: "plan.pdf".into(), size: 1, hash: "00".into() });
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Message(file))));
    assert_eq!(chat.alerts[1].text, "[file] plan.pdf");
    chat.alerts.clear();
    type_line(&mut chat, "/notify none");
    live(&mut chat, "general", 9, "bob", "ann: are you there?");
    assert!(chat.alerts.is_empty());
    type_line(&mut chat, "/notify");
    assert_eq!(
        chat.notice.as_deref(),
        Some("alerts on none messages · bell on · desktop osc9"),
        "/notify alone says the setting"
    );
}

#[test]
fn snapshot_a_muted_setting_shows_on_the_status_line() {
    let mut chat = main_chat(conversation());
    type_line(&mut chat, "/notify none");
    chat.notice = None;
    insta::assert_snapshot!("muted_80x24", render(&mut chat, 80, 24));
    type_line(&mut chat, "/notify all");
    chat.notice = None;
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("│ alerts: all"), "{screen}");
    type_line(&mut chat, "/notify mentions");
    chat.notice = None;
    let screen = render(&mut chat, 80, 24);
    assert!(!screen.contains("alerts") && !screen.contains("muted"), "{screen}");
}

#[tokio::test]
async fn the_loop_raises_queued_alerts_once_after_the_frame() {
    use crate::tui::event_loop::Ui;
    use tuirealm::ratatui::layout::Size;
    use tuirealm::terminal::TestTerminalAdapter;
    let terminal = TestTerminalAdapter::new(Size::new(80, 24)).expect("test terminal");
    let (_tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let mut ui = Ui::new(terminal, main_chat(conversation()), rx, false).expect("ui");
    let out = Arc::new(Mutex::new(Vec::<u8>::new()));
    let sink = out.clone();
    ui.alerts = Box::new(move |alerts: &[Alert], cfg: &Notify| {
        let bytes = crate::tui::notify::escape(alerts, cfg, false);
        sink.lock().expect("lock").extend_from_slice(&bytes);
    });
    ui.chat.notify.desktop = Desktop::Osc777;
    live(&mut ui.chat, "general", 7, "bob", "ann: ship it?");
    live(&mut ui.chat, "general", 8, "bob", "@ann hello?");
    assert!(ui.draw_if_needed().expect("draw"));
    let bytes = out.lock().expect("lock").clone();
    assert_eq!(bytes.iter().filter(|b| **b == 0x07).count(), 1, "one bell for both");
    let text = String::from_utf8_lossy(&bytes);
    assert!(
        text.contains("\x1b]777;notify;qchat: bob in general;ann: ship it? (+1 more)"),
        "{text:?}"
    );
    assert!(ui.chat.alerts.is_empty());
    assert!(!ui.draw_if_needed().expect("draw"), "nothing new");
    assert_eq!(out.lock().expect("lock").len(), bytes.len(), "raised once");
}
