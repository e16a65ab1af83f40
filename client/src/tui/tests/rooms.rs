//! Direct messages, private rooms and moderation in the TUI (issue 17):
//! `/dm` (with Tab completion of the names the client has seen),
//! `/invite`, `/kick`, `/ban`, `/topic`, `/private`; the rooms pane's DMs
//! section and private mark; the topic in the room's header; roles in the
//! members pane; a clear line when the user is kicked or banned.

use super::*;
use crate::tui::app::ModAction;
use crate::{RemovedReason, Role, RoomKind, RoomRemoved};

fn dm(id: &str, title: &str) -> RoomInfo {
    RoomInfo { kind: RoomKind::Dm, title: Some(title.into()), ..room(id, true, 0, 0) }
}

fn ev(chat: &mut Chat, e: ClientEvent) {
    chat.update(Msg::Net(NetEvent::Client(e)));
}

#[test]
fn slash_commands_ask_for_room_changes() {
    let mut chat = main_chat(conversation());
    type_line(&mut chat, "/dm bob 李雷");
    type_line(&mut chat, "/invite bob carol");
    type_line(&mut chat, "/kick bob too loud today");
    type_line(&mut chat, "/ban bob");
    type_line(&mut chat, "/topic release on friday :tada:");
    type_line(&mut chat, "/topic -");
    type_line(&mut chat, "/private");
    type_line(&mut chat, "/private off");
    let change = |action| Effect::Moderate { room: "general".into(), action };
    assert_eq!(
        chat.effects,
        [
            Effect::Dm(vec!["bob".into(), "李雷".into()]),
            change(ModAction::Invite("bob".into())),
            change(ModAction::Invite("carol".into())),
            change(ModAction::Kick("bob".into(), Some("too loud today".into()))),
            change(ModAction::Ban("bob".into(), None)),
            change(ModAction::Topic("release on friday 🎉".into())),
            change(ModAction::Topic(String::new())),
            change(ModAction::Private(true)),
            change(ModAction::Private(false)),
        ]
    );
    chat.effects.clear();
    type_line(&mut chat, "/kick");
    assert_eq!(chat.notice.as_deref(), Some("/kick needs a user name"));
    type_line(&mut chat, "/private maybe");
    assert!(chat.effects.is_empty());
    // Without a room, a change has nowhere to go.
    let random = chat.find("random").expect("random");
    chat.open_room(random);
    chat.update(Msg::Input(InputMsg::KillToStart));
    type_line(&mut chat, "/ban bob");
    assert!(chat.notice.as_deref().is_some_and(|n| n.starts_with("join a room first")));
    assert!(chat.effects.is_empty());
}

#[test]
fn tab_completes_a_dm_partner_from_every_name_seen() {
    let mut chat = main_chat(conversation());
    // carol is in no member list fetched, only the title of a DM.
    chat.update(Msg::Net(NetEvent::Rooms(vec![dm("+00000000000000c1", "@carol")])));
    for c in "/dm ca".chars() {
        chat.update(Msg::Input(InputMsg::Char(c)));
    }
    chat.update(Msg::Input(InputMsg::Complete));
    assert_eq!(chat.input.text, "/dm carol ");
    for c in "b".chars() {
        chat.update(Msg::Input(InputMsg::Char(c)));
    }
    chat.update(Msg::Input(InputMsg::Complete));
    assert_eq!(chat.input.text, "/dm carol bob ", "and a member of a room");
    chat.update(Msg::Input(InputMsg::KillToStart));
    for c in "/kick b".chars() {
        chat.update(Msg::Input(InputMsg::Char(c)));
    }
    chat.update(Msg::Input(InputMsg::Complete));
    assert_eq!(chat.input.text, "/kick bob ");
}

/// A room list with a private room, a pending invitation and two DMs;
/// general has a topic and roles.
fn with_access(chat: &mut Chat) {
    let plans = RoomInfo {
        kind: RoomKind::Private,
        title: Some("plans".into()),
        role: Some(Role::Owner),
        ..room("+00000000000000a1", true, 2, 2)
    };
    let later = RoomInfo {
        kind: RoomKind::Private,
        title: Some("later".into()),
        invited: true,
        ..room("+00000000000000a2", false, 0, 0)
    };
    let general = RoomInfo {
        topic: Some("release on friday".into()),
        role: Some(Role::Moderator),
        ..room("general", true, 6, 4)
    };
    chat.update(Msg::Net(NetEvent::Rooms(vec![
        general,
        plans,
        later,
        dm("+00000000000000d1", "@bob"),
        RoomInfo { unread: 2, last_seq: 2, ..dm("+00000000000000d2", "@bob,carol") },
    ])));
    chat.update(Msg::Net(NetEvent::Members {
        room: "general".into(),
        members: vec![
            MemberInfo {
                user: "ann".into(),
                online: true,
                role: Some(Role::Moderator),
                display_name: None,
            },
            MemberInfo {
                user: "bob".into(),
                online: true,
                role: Some(Role::Owner),
                display_name: None,
            },
            MemberInfo {
                user: "李雷".into(),
                online: false,
                role: Some(Role::Member),
                display_name: None,
            },
        ],
    }));
}

#[test]
fn the_rooms_pane_has_a_dms_section_and_the_header_the_topic() {
    let mut chat = main_chat(conversation());
    with_access(&mut chat);
    chat.show_members = true;
    let screen = render(&mut chat, 120, 40);
    insta::assert_snapshot!("access_120x40", screen);
    let lines: Vec<&str> = screen.lines().collect();
    let row = |needle: &str| {
        lines.iter().position(|l| l.contains(needle)).unwrap_or_else(|| panic!("{needle}"))
    };
    // Rooms one is in, rooms one could join, then the DMs under a heading,
    // each called by its title (not its id).
    assert!(row("plans 🔒") < row("random"));
    assert!(row("later 🔒") < row("Direct messages"));
    assert!(row("Direct messages") < row("@bob "));
    assert!(row("@bob ") < row("@bob,carol"));
    assert!(!screen.contains("+00000000000000"), "no room shows its id");
    assert!(lines[row(" general — release on friday ")].contains("general — release on friday"));
    assert!(lines[row("bob owner")].contains("● bob owner"));
    assert!(lines[row("ann mod")].contains("● ann mod"));
    // A click on the heading opens nothing; one below it opens that DM.
    let heading = chat.room_at_row(chat.rooms.iter().position(|r| r.is_dm()).expect("a dm"));
    assert_eq!(heading, None);
    let first_dm = chat.rooms.iter().position(|r| r.is_dm()).expect("a dm");
    assert_eq!(chat.room_at_row(first_dm + 1), Some(first_dm));
    assert_eq!(chat.room_at_row(0), Some(0));
}

#[test]
fn a_dm_or_an_invitation_from_someone_else_appears_in_the_list() {
    let mut chat = main_chat(conversation());
    ev(&mut chat, ClientEvent::Room(Box::new(dm("+00000000000000d3", "@李雷"))));
    let i = chat.find("+00000000000000d3").expect("the DM is listed");
    assert_eq!(chat.rooms[i].title(), "@李雷");
    assert_eq!(chat.room().map(|r| r.info.name.as_str()), Some("general"), "still on general");
    // A topic set meanwhile (a `room` event for a joined room) reaches the
    // header without a new listing.
    let topic = RoomInfo { topic: Some("standup at 10".into()), ..room("general", true, 6, 4) };
    ev(&mut chat, ClientEvent::Room(Box::new(topic)));
    assert!(render(&mut chat, 120, 40).contains(" general — standup at 10 "));
}

#[test]
fn a_ban_says_so_in_the_room_and_the_status_line() {
    let mut chat = main_chat(conversation());
    ev(
        &mut chat,
        ClientEvent::RoomRemoved(RoomRemoved {
            room: "general".into(),
            room_id: "+0000000000000001".into(),
            reason: RemovedReason::Banned,
            by: Some("bob".into()),
        }),
    );
    assert_eq!(chat.notice.as_deref(), Some("general: you were banned from the room by bob"));
    let screen = render(&mut chat, 120, 40);
    assert!(screen.contains("⛔ you were banned from the room by bob"), "{screen}");
    let r = chat.room().expect("still shown");
    assert!(!r.info.joined && r.members.is_empty());
    assert!(r.messages().any(|m| m.body == "hi bob"), "what it showed stays");
    // A kick from a private room one is not looking at: it leaves the list.
    with_access(&mut chat);
    ev(
        &mut chat,
        ClientEvent::RoomRemoved(RoomRemoved {
            room: "+00000000000000a1".into(),
            room_id: "+00000000000000a1".into(),
            reason: RemovedReason::Kicked,
            by: Some("eve".into()),
        }),
    );
    assert_eq!(chat.find("+00000000000000a1"), None, "a private room one left is gone");
    assert_eq!(chat.notice.as_deref(), Some("plans: you were removed from the room by eve"));
    assert_eq!(chat.room().map(|r| r.info.name.as_str()), Some("general"));
}

#[test]
fn a_join_recorded_as_a_system_message_shows_once() {
    let mut chat = main_chat(conversation());
    let joined = |user: &str| crate::Change {
        user: Some(user.into()),
        ..crate::Change::new(crate::ChangeKind::Joined, user)
    };
    let system = Message {
        kind: MessageKind::System,
        change: Some(Box::new(joined("dan"))),
        ..msg("general", 7, "dan", "dan joined", T0 + 600_000)
    };
    ev(&mut chat, ClientEvent::Message(system));
    let member =
        |user: &str| crate::MemberEvent { room: "general".into(), user: user.into(), joined: true };
    // The older `member` event after it: no second line, but dan is listed.
    ev(&mut chat, ClientEvent::Member(member("dan")));
    let screen = render(&mut chat, 120, 40);
    assert!(screen.contains("* dan joined"), "{screen}");
    assert!(!screen.contains("→ dan joined"), "{screen}");
    assert!(chat.room().expect("room").members.iter().any(|m| m.user == "dan"));
    // From a server without system messages, the event is the only news.
    ev(&mut chat, ClientEvent::Member(member("eve")));
    assert!(render(&mut chat, 120, 40).contains("→ eve joined"));
}
