//! Feedback about sending and about people: a line typed shows at once as
//! sending, then as the message once the server has it (never twice), or
//! as failed with why (Ctrl-R sends it again, Alt-R takes it back to edit);
//! joins, leaves and quits (with their reasons) and this client losing its
//! connection (`server shutting down`) show as dim lines, one each, folded
//! or hidden.

use super::*;
use crate::Presence;
use crate::tui::timeline::{EventsShown, Item, SendState};

fn live(chat: &mut Chat, seq: u64, sender: &str, body: &str) {
    let m = msg("general", seq, sender, body, T0 + 600_000);
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Message(m))));
}

fn sent(chat: &mut Chat, local: u64, result: Result<u64, &str>) {
    let result = result.map_err(str::to_owned);
    chat.update(Msg::Net(NetEvent::Sent { room: "general".into(), local, result }));
}

fn pending(chat: &Chat) -> Vec<(String, SendState)> {
    chat.room()
        .expect("room")
        .items
        .iter()
        .filter_map(|it| match it {
            Item::Pending(p) => Some((p.body.clone(), p.state.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn snapshot_a_send_shows_as_sending_then_failed_with_why() {
    let mut chat = main_chat(conversation());
    type_line(&mut chat, "on its way");
    type_line(&mut chat, "way too long");
    assert_eq!(chat.effects.len(), 2);
    sent(&mut chat, 2, Err("server: too_large: the body is over 64 KiB"));
    let screen = render(&mut chat, 80, 24);
    insta::assert_snapshot!("sends_80x24", screen);
    assert!(screen.contains("on its way  ⋯ sending"), "{screen}");
    let flat: String = screen.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(flat.contains("✗ not sent: server: too_large"), "{screen}");
    assert!(flat.contains("Ctrl-R retry · Alt-R edit"), "{screen}");
    assert!(
        chat.notice.as_deref().is_some_and(|n| n.starts_with("not sent to general")),
        "{:?}",
        chat.notice
    );
}

#[test]
fn an_acknowledged_send_becomes_its_message_once() {
    let mut chat = main_chat(conversation());
    type_line(&mut chat, "first");
    type_line(&mut chat, "second");
    // The acknowledgement first: still shown until the message is.
    sent(&mut chat, 1, Ok(7));
    assert_eq!(pending(&chat)[0], ("first".into(), SendState::Sent(7)));
    live(&mut chat, 7, "ann", "first");
    // The message first (the live echo), the acknowledgement after.
    live(&mut chat, 8, "ann", "second");
    sent(&mut chat, 2, Ok(8));
    assert!(pending(&chat).is_empty());
    let screen = render(&mut chat, 80, 24);
    assert_eq!(screen.matches("first").count(), 1, "{screen}");
    assert_eq!(screen.matches("second").count(), 1, "{screen}");
    assert!(!screen.contains("sending"), "{screen}");
}

#[test]
fn failed_sends_are_retried_or_taken_back_to_edit() {
    let mut chat = main_chat(conversation());
    type_line(&mut chat, "/me waves");
    type_line(&mut chat, "typo'd lien");
    chat.effects.clear();
    sent(&mut chat, 1, Err("not connected"));
    sent(&mut chat, 2, Err("not connected"));
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("* ann waves"), "a pending action reads as one:\n{screen}");
    // Alt-R: the newest failed line back in the input, gone from the room.
    let alt_r = keymsg(key(Key::Char('r'), KeyModifiers::ALT)).expect("bound");
    chat.update(alt_r);
    assert_eq!(chat.input.text, "typo'd lien");
    assert_eq!(pending(&chat).len(), 1);
    // Not while something is typed.
    chat.update(keymsg(key(Key::Char('r'), KeyModifiers::ALT)).expect("bound"));
    assert_eq!(chat.notice.as_deref(), Some("empty the input line first (Ctrl-U)"));
    // Ctrl-R: the rest goes again, under the same local id.
    chat.update(keymsg(key(Key::Char('r'), KeyModifiers::CONTROL)).expect("bound"));
    assert_eq!(
        chat.effects,
        [Effect::Send {
            room: "general".into(),
            body: "/me waves".into(),
            local: 1,
            reply_to: None
        }]
    );
    assert_eq!(pending(&chat)[0].1, SendState::Sending);
    chat.update(keymsg(key(Key::Char('r'), KeyModifiers::CONTROL)).expect("bound"));
    assert_eq!(chat.notice.as_deref(), Some("no failed message in this room"));
}

fn people(chat: &mut Chat) {
    let ev = |e: ClientEvent| Msg::Net(NetEvent::Client(e));
    chat.update(ev(ClientEvent::Member(crate::MemberEvent {
        room: "general".into(),
        user: "dan".into(),
        joined: true,
    })));
    chat.update(ev(ClientEvent::Presence(Presence {
        user: "bob".into(),
        online: false,
        reason: Some("lunch, back at 2".into()),
    })));
    chat.update(ev(ClientEvent::Presence(Presence {
        user: "李雷".into(),
        online: true,
        reason: None,
    })));
    chat.update(ev(ClientEvent::Presence(Presence {
        user: "dan".into(),
        online: false,
        reason: Some("quit".into()),
    })));
    chat.update(ev(ClientEvent::Member(crate::MemberEvent {
        room: "general".into(),
        user: "dan".into(),
        joined: false,
    })));
}

#[test]
fn snapshot_joins_and_quits_show_with_their_reasons_one_each_or_folded() {
    let mut chat = main_chat(conversation());
    people(&mut chat);
    live(&mut chat, 7, "李雷", "back!");
    let screen = render(&mut chat, 80, 24);
    insta::assert_snapshot!("people_80x24", screen);
    for line in [
        "→ dan joined",
        "⇠ bob quit (lunch, back at 2)",
        "⇢ 李雷 is online",
        "⇠ dan quit",
        "← dan left",
    ] {
        assert!(screen.contains(line), "{line}:\n{screen}");
    }
    // Alt-J folds each run onto one line, then hides them.
    chat.update(keymsg(key(Key::Char('j'), KeyModifiers::ALT)).expect("bound"));
    assert_eq!(chat.events, EventsShown::Folded);
    let folded = render(&mut chat, 80, 24);
    insta::assert_snapshot!("people_folded_80x24", folded);
    assert!(folded.contains("→ dan joined · ⇠ bob quit (lunch, back"), "{folded}");
    assert!(folded.contains("at 2) · ⇢ 李雷 is online · ⇠ dan quit"), "{folded}");
    assert_eq!(
        folded.matches("09:10").count(),
        2,
        "one time for the run, one for back!:\n{folded}"
    );
    chat.update(Msg::View(ViewMsg::ToggleEvents));
    let hidden = render(&mut chat, 80, 24);
    assert!(!hidden.contains("joined") && hidden.contains("back!"), "{hidden}");
    assert!(hidden.contains("joins hidden"), "the title says so:\n{hidden}");
    chat.update(Msg::View(ViewMsg::ToggleEvents));
    assert_eq!(chat.events, EventsShown::Lines);
    // Presence of someone in no loaded member list, or one's own, makes no line.
    let before = chat.room().expect("room").items.len();
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Presence(Presence {
        user: "ann".into(),
        online: false,
        reason: None,
    }))));
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Presence(Presence {
        user: "zed".into(),
        online: true,
        reason: None,
    }))));
    assert_eq!(chat.room().expect("room").items.len(), before);
}

#[test]
fn losing_the_connection_says_why_in_the_room_and_the_status_line() {
    let mut chat = main_chat(conversation());
    type_line(&mut chat, "typed while away");
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::State(ConnState::Reconnecting {
        attempt: 1,
        last_error: "server shutting down".into(),
    }))));
    chat.notice = None;
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("⚡ disconnected: server shutting down"), "{screen}");
    assert!(
        screen.contains("reconnecting (try 1)") && screen.contains("│ server shutting down"),
        "{screen}"
    );
    assert!(screen.contains("typed while away  ⋯ sending"), "still on its way:\n{screen}");
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::State(ConnState::Reconnecting {
        attempt: 2,
        last_error: "connection refused".into(),
    }))));
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::State(ConnState::Connected))));
    let screen = render(&mut chat, 80, 24);
    assert_eq!(screen.matches("⚡ disconnected").count(), 1, "once per loss:\n{screen}");
    assert!(screen.contains("⚡ connected again"), "{screen}");
}

#[test]
fn events_stay_where_they_happened_when_history_arrives() {
    let mut chat = main_chat(Vec::new());
    // The listing said 6 messages; their page comes after the events.
    let g = chat.find("general").expect("general");
    chat.rooms[g].info.last_seq = 6;
    people(&mut chat);
    chat.update(Msg::Net(NetEvent::History {
        older: false,
        page: MessagesOk { room: "general".into(), messages: conversation(), more: false },
    }));
    let items = &chat.room().expect("room").items;
    let first_event = items.iter().position(Item::is_event).expect("events");
    assert!(items[..first_event].iter().all(|it| it.msg().is_some()), "history goes before");
}
