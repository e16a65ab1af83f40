//! The mouse: the wheel scrolls the messages (or the overlay), a click on
//! a room opens it, on a file offer downloads it, on the transfers panel
//! shows them in full, beside an overlay closes it. Positions come from the
//! frame drawn (here at 80x24: rooms in columns 0-15, messages from 16).

use tuirealm::event::{MouseButton, MouseEvent, MouseEventKind};

use super::*;
use crate::tui::app::{MouseKind, MouseMsg};
use crate::tui::components::input::mouse_to_msg;

fn mouse(chat: &mut Chat, kind: MouseKind, col: u16, row: u16) {
    chat.update(Msg::Mouse(MouseMsg { kind, col, row }));
}

#[test]
fn terminal_mouse_events_map_to_messages() {
    let ev = |kind| MouseEvent { kind, modifiers: KeyModifiers::NONE, column: 7, row: 3 };
    assert_eq!(
        mouse_to_msg(ev(MouseEventKind::ScrollUp)),
        Some(Msg::Mouse(MouseMsg { kind: MouseKind::WheelUp, col: 7, row: 3 }))
    );
    assert_eq!(
        mouse_to_msg(ev(MouseEventKind::Down(MouseButton::Left))),
        Some(Msg::Mouse(MouseMsg { kind: MouseKind::Click, col: 7, row: 3 }))
    );
    assert_eq!(mouse_to_msg(ev(MouseEventKind::Moved)), None);
    assert_eq!(mouse_to_msg(ev(MouseEventKind::Down(MouseButton::Right))), None);
}

fn long_room() -> Chat {
    let mut msgs: Vec<Message> =
        (1..=60).map(|s| msg("general", s, "bob", &format!("m{s}"), T0 + s as i64)).collect();
    let mut file = msg("general", 61, "bob", "plan.pdf", T0 + 61);
    file.kind = MessageKind::File;
    file.file = Some(FileInfo { id: 42, name: "plan.pdf".into(), size: 2048, hash: "00".into() });
    msgs.push(file);
    msgs.push(msg("general", 62, "bob", "the end", T0 + 62));
    main_chat(msgs)
}

#[test]
fn the_wheel_scrolls_the_messages_three_rows_a_notch() {
    let mut chat = long_room();
    let before = render(&mut chat, 80, 24);
    assert!(before.contains("the end"));
    mouse(&mut chat, MouseKind::WheelUp, 40, 10);
    let up = render(&mut chat, 80, 24);
    assert!(!up.contains("the end") && up.contains("End for newest"), "{up}");
    // The message view's cell of a screen row.
    let cell = |screen: &str, row: usize| {
        screen.lines().nth(row).and_then(|l| l.split('│').nth(3)).unwrap_or_default().to_owned()
    };
    for row in 1..=5 {
        assert_eq!(cell(&up, row + 3), cell(&before, row), "three rows down:\n{before}\n{up}");
    }
    mouse(&mut chat, MouseKind::WheelDown, 40, 10);
    assert_eq!(chat.room().expect("room").anchor, Anchor::Bottom);
}

#[test]
fn a_click_opens_a_room_or_downloads_a_file_offer() {
    let mut chat = long_room();
    let screen = render(&mut chat, 80, 24);
    // The room list: dev on row 1, general on row 2.
    mouse(&mut chat, MouseKind::Click, 3, 1);
    assert_eq!(chat.room().map(|r| r.info.name.as_str()), Some("dev"));
    mouse(&mut chat, MouseKind::Click, 3, 2);
    assert_eq!(chat.room().map(|r| r.info.name.as_str()), Some("general"));
    mouse(&mut chat, MouseKind::Click, 3, 20);
    assert_eq!(chat.room().map(|r| r.info.name.as_str()), Some("general"), "below the rooms");
    chat.effects.clear();
    // The file offer's row.
    let row = screen.lines().position(|l| l.contains("plan.pdf")).expect("the offer is shown");
    let row = u16::try_from(row).expect("small");
    mouse(&mut chat, MouseKind::Click, 20, row - 1);
    assert!(chat.effects.is_empty(), "the row above is a plain message");
    mouse(&mut chat, MouseKind::Click, 40, row);
    assert!(
        matches!(&chat.effects[..], [Effect::Download { file_id: 42, .. }]),
        "{:?}",
        chat.effects
    );
    assert_eq!(chat.transfers[0].name, "plan.pdf");
}

#[test]
fn a_click_on_the_transfers_shows_them_and_beside_an_overlay_closes_it() {
    let mut chat = long_room();
    with_transfers(&mut chat);
    let screen = render(&mut chat, 80, 24);
    let row = screen.lines().position(|l| l.contains("Transfers")).expect("the panel");
    mouse(&mut chat, MouseKind::Click, 10, u16::try_from(row + 1).expect("small"));
    assert_eq!(chat.popup.as_ref().map(|p| p.title.as_str()), Some("Transfers"));
    render(&mut chat, 80, 24);
    // The wheel scrolls the overlay, not the messages.
    mouse(&mut chat, MouseKind::WheelUp, 40, 10);
    assert_eq!(chat.room().expect("room").anchor, Anchor::Bottom);
    mouse(&mut chat, MouseKind::Click, 40, 8);
    assert!(chat.popup.is_some(), "a click on the overlay keeps it");
    mouse(&mut chat, MouseKind::Click, 0, 0);
    assert!(chat.popup.is_none(), "a click beside it closes it");
}

#[test]
fn the_mouse_does_nothing_on_the_login_screen() {
    let mut chat = Chat::new(form(), false, false, Zone::utc());
    render(&mut chat, 80, 24);
    mouse(&mut chat, MouseKind::Click, 3, 1);
    mouse(&mut chat, MouseKind::WheelUp, 3, 1);
    assert!(chat.effects.is_empty() && chat.screen == Screen::Login);
}
