//! Acting on messages (issue 18): selecting one with the keyboard and the
//! mouse; editing, deleting (with a yes), replying, reacting through the
//! emoji picker, the thread view; and how they show: reactions under a
//! message, the quote above a reply, `(edited)`, tombstones, the typing
//! line, unread counts that follow another device's read marker; live
//! edits, deletions and reactions changing the view in place.

use super::*;
use crate::tui::app::MessageAction;
use crate::tui::model::Compose;
use crate::{Change, ChangeKind, Reaction, ReplyTo, Role, ThreadOk, Tombstone, Typing};

/// Presses a key on the main screen, as the input box maps it.
fn press(chat: &mut Chat, code: Key, modifiers: KeyModifiers) {
    let m = key_to_msg(&chat.keys, key(code, modifiers)).expect("a bound key or a character");
    chat.update(m);
}

fn typed(chat: &mut Chat, text: &str) {
    for c in text.chars() {
        press(chat, Key::Char(c), KeyModifiers::NONE);
    }
}

fn select_up(chat: &mut Chat, n: usize) {
    for _ in 0..n {
        press(chat, Key::Up, KeyModifiers::CONTROL);
    }
}

fn reply(seq: u64, sender: &str, excerpt: &str) -> Option<Box<ReplyTo>> {
    Some(Box::new(ReplyTo { seq, sender: sender.into(), excerpt: excerpt.into(), deleted: false }))
}

/// A change (edit, deletion, reaction) by `by` to message `of`, as the
/// server records it.
fn change(seq: u64, kind: ChangeKind, by: &str, of: u64) -> Message {
    let mut m = msg("general", seq, by, &format!("{by} changed message {of}"), T0 + 400_000);
    m.kind = MessageKind::System;
    m.change = Some(Box::new(Change { seq: Some(of), ..Change::new(kind, by) }));
    m
}

fn live(chat: &mut Chat, m: Message) {
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Message(m))));
}

/// A conversation with every kind of message this issue adds: reactions
/// (one the user gave), a reply with its quote, an edited message, a
/// tombstone, and a reply to the deleted one.
fn features() -> Vec<Message> {
    let mut lunch = msg("general", 1, "bob", "lunch at noon?", T0);
    lunch.reactions = vec![
        Reaction { emoji: "👍".into(), count: 2, me: true },
        Reaction { emoji: "🎉".into(), count: 1, me: false },
    ]
    .into();
    lunch.replies = 1;
    let mut yes = msg("general", 2, "ann", "yes, at the usual place", T0 + 60_000);
    yes.reply_to = reply(1, "bob", "lunch at noon?");
    let mut edited = msg("general", 3, "bob", "the usual place is closed today", T0 + 120_000);
    edited.edited = Some(T0 + 130_000);
    let mut gone = msg("general", 4, "李雷", "", T0 + 180_000);
    gone.deleted = Some(Box::new(Tombstone { by: "李雷".into(), ts: T0 + 190_000 }));
    let mut orphan = msg("general", 5, "bob", "what did they say?", T0 + 240_000);
    orphan.reply_to = Some(Box::new(ReplyTo {
        seq: 4,
        sender: "李雷".into(),
        excerpt: String::new(),
        deleted: true,
    }));
    vec![lunch, yes, edited, gone, orphan]
}

#[test]
fn snapshot_reactions_reply_quote_edited_mark_and_tombstone() {
    let mut chat = main_chat(features());
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("[👍 2]  🎉 1  · 1 reply"), "{screen}");
    assert!(screen.contains("↪ bob: lunch at noon?"), "{screen}");
    assert!(screen.contains("closed today") && screen.contains("(edited)"), "{screen}");
    assert!(screen.contains("message deleted by 李雷"), "{screen}");
    assert!(screen.contains("↪ 李雷: (deleted)"), "{screen}");
    insta::assert_snapshot!("features_80x24", screen);
}

#[test]
fn live_edits_deletions_and_reactions_change_the_view_in_place() {
    let mut chat = main_chat(features());
    let unread = chat.room().map(|r| r.info.unread);
    let mut edit = change(6, ChangeKind::Edited, "bob", 1);
    if let Some(c) = edit.change.as_deref_mut() {
        c.body = Some("lunch at one?".into());
    }
    live(&mut chat, edit);
    let mut react = change(7, ChangeKind::Reacted, "bob", 2);
    if let Some(c) = react.change.as_deref_mut() {
        c.emoji = Some("🚀".into());
    }
    live(&mut chat, react.clone());
    // The same event again (a replay) changes nothing.
    live(&mut chat, react);
    let mut unreact = change(8, ChangeKind::Unreacted, "ann", 1);
    if let Some(c) = unreact.change.as_deref_mut() {
        c.emoji = Some("👍".into());
    }
    live(&mut chat, unreact);
    live(&mut chat, change(9, ChangeKind::Deleted, "bob", 3));
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("lunch at one? (edited)"), "{screen}");
    assert!(screen.contains("↪ bob: lunch at one?"), "the quote follows the edit:\n{screen}");
    assert!(screen.contains("🚀 1") && !screen.contains("🚀 2"), "{screen}");
    assert!(screen.contains("👍 1  🎉 1") && !screen.contains("[👍"), "{screen}");
    assert!(screen.contains("message deleted by bob"), "{screen}");
    assert!(!screen.contains("closed today"), "{screen}");
    assert!(!screen.contains("changed message"), "changes are not lines:\n{screen}");
    assert_eq!(chat.room().map(|r| r.info.unread), unread, "nor unread messages");
    assert!(chat.alerts.is_empty());
    // A history page with the message as it is now does not count twice.
    let mut page = features();
    page[1].reactions = vec![Reaction { emoji: "🚀".into(), count: 1, me: false }].into();
    let mut react = change(7, ChangeKind::Reacted, "bob", 2);
    if let Some(c) = react.change.as_deref_mut() {
        c.emoji = Some("🚀".into());
    }
    page.push(react);
    let mut fresh = main_chat(Vec::new());
    fresh.update(Msg::Net(NetEvent::History {
        older: false,
        page: MessagesOk { room: "general".into(), messages: page, more: false },
    }));
    let screen = render(&mut fresh, 80, 24);
    assert!(screen.contains("🚀 1"), "{screen}");
}

#[test]
fn the_keyboard_selects_messages_and_edits_ones_own() {
    let mut chat = main_chat(features());
    assert!(!chat.selecting());
    // Ctrl-Up from none: the newest; again: the one above.
    select_up(&mut chat, 1);
    assert_eq!(chat.room().and_then(|r| r.selected), Some(5));
    select_up(&mut chat, 3);
    assert_eq!(chat.room().and_then(|r| r.selected), Some(2));
    let screen = render(&mut chat, 100, 30);
    assert!(screen.contains("#2: e edit · d delete · r reply · + react · t thread"), "{screen}");
    // `e` on ann's own message: the input takes its text; Enter saves.
    typed(&mut chat, "e");
    assert_eq!(chat.input.text, "yes, at the usual place");
    let screen = render(&mut chat, 100, 30);
    assert!(screen.contains("editing #2 (Enter saves · Esc cancels)"), "{screen}");
    press(&mut chat, Key::Char('w'), KeyModifiers::CONTROL);
    typed(&mut chat, "café :tada:");
    chat.effects.clear();
    press(&mut chat, Key::Enter, KeyModifiers::NONE);
    assert_eq!(
        chat.effects,
        [Effect::Edit {
            room: "general".into(), seq: 2, body: "yes, at the usual café 🎉".into()
        }]
    );
    assert!(chat.input.text.is_empty() && chat.compose.is_none());
    // Another's message cannot be edited; Esc cancels an edit and empties
    // the input.
    select_up(&mut chat, 1);
    assert_eq!(chat.room().and_then(|r| r.selected), Some(5));
    chat.effects.clear();
    typed(&mut chat, "e");
    assert!(chat.notice.as_deref().is_some_and(|n| n.contains("only your own")));
    assert!(chat.input.text.is_empty() && chat.effects.is_empty());
    select_up(&mut chat, 3);
    typed(&mut chat, "e");
    assert_eq!(chat.input.text, "yes, at the usual place");
    press(&mut chat, Key::Esc, KeyModifiers::NONE);
    assert!(chat.input.text.is_empty() && chat.compose.is_none());
    // With no selection the letters are typed.
    typed(&mut chat, "edit");
    assert_eq!(chat.input.text, "edit");
    // A letter that is no message key leaves the selection and is typed.
    chat.input.take();
    select_up(&mut chat, 1);
    typed(&mut chat, "hello");
    assert_eq!(chat.input.text, "hello");
    assert!(!chat.selecting());
}

#[test]
fn deleting_asks_first_and_only_moderators_delete_others() {
    let mut chat = main_chat(features());
    select_up(&mut chat, 1);
    typed(&mut chat, "d");
    assert!(chat.confirm.is_none() && chat.popup.is_none(), "bob's message, ann no moderator");
    assert!(chat.notice.as_deref().is_some_and(|n| n.contains("only moderators")));
    // Her own: asked first; n keeps it.
    select_up(&mut chat, 3);
    typed(&mut chat, "d");
    assert!(chat.popup.as_ref().is_some_and(|p| p.lines[0] == "Delete your message #2?"));
    chat.effects.clear();
    typed(&mut chat, "n");
    assert!(chat.effects.is_empty() && chat.popup.is_none());
    // Delete (the key) asks too; y deletes.
    press(&mut chat, Key::Delete, KeyModifiers::NONE);
    typed(&mut chat, "y");
    assert_eq!(chat.effects, [Effect::Delete { room: "general".into(), seq: 2 }]);
    // As a moderator, anyone's.
    let general = chat.find("general").expect("general");
    chat.rooms[general].info.role = Some(Role::Moderator);
    chat.effects.clear();
    select_up(&mut chat, 1);
    typed(&mut chat, "d");
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("Delete bob's message #5?"), "{screen}");
    press(&mut chat, Key::Enter, KeyModifiers::NONE);
    assert_eq!(chat.effects, [Effect::Delete { room: "general".into(), seq: 5 }]);
}

#[test]
fn a_reply_is_sent_with_its_parent_and_quoted_until_the_message_comes() {
    let mut chat = main_chat(features());
    select_up(&mut chat, 3);
    typed(&mut chat, "r");
    let screen = render(&mut chat, 100, 30);
    assert!(
        screen.contains("replying to bob: the usual place is closed tod… (Esc cancels)"),
        "{screen}"
    );
    typed(&mut chat, "oh no");
    chat.effects.clear();
    press(&mut chat, Key::Enter, KeyModifiers::NONE);
    assert_eq!(
        chat.effects,
        [Effect::Send {
            room: "general".into(),
            body: "oh no".into(),
            local: 1,
            reply_to: Some(3)
        }]
    );
    assert!(chat.compose.is_none(), "one reply");
    // Esc cancels a reply and keeps what is typed.
    select_up(&mut chat, 1);
    typed(&mut chat, "r");
    typed(&mut chat, "draft");
    press(&mut chat, Key::Esc, KeyModifiers::NONE);
    assert!(chat.compose.is_none());
    assert_eq!(chat.input.text, "draft");
    // The reply arrives: the parent counts it.
    let mut m = msg("general", 6, "ann", "oh no", T0 + 300_000);
    m.reply_to = reply(3, "bob", "the usual place is closed today");
    live(&mut chat, m);
    let screen = render(&mut chat, 100, 30);
    assert!(screen.contains("· 1 reply") && screen.contains("↪ bob: the usual place"), "{screen}");
}

#[test]
fn snapshot_the_emoji_picker_searches_shortcodes_as_one_types() {
    let mut chat = main_chat(features());
    // A tombstone takes no reaction.
    select_up(&mut chat, 2);
    typed(&mut chat, "+");
    assert!(chat.picker.is_none());
    assert_eq!(chat.notice.as_deref(), Some("#4 is deleted"));
    select_up(&mut chat, 1);
    typed(&mut chat, "+");
    assert!(chat.picker.is_some());
    typed(&mut chat, ":thu");
    let screen = render(&mut chat, 80, 24);
    insta::assert_snapshot!("picker_80x24", screen);
    assert!(screen.contains("▶ 👍  :+1:") || screen.contains("▶ 👍  :thumbsup:"), "{screen}");
    chat.effects.clear();
    press(&mut chat, Key::Enter, KeyModifiers::NONE);
    assert_eq!(
        chat.effects,
        [Effect::React { room: "general".into(), seq: 3, emoji: "👍".into(), remove: false }]
    );
    assert!(chat.picker.is_none() && chat.popup.is_none() && !chat.selecting());
    // The user gave 👍 to #1 already: picking it again takes it back.
    select_up(&mut chat, 5);
    typed(&mut chat, "+");
    press(&mut chat, Key::Down, KeyModifiers::NONE);
    press(&mut chat, Key::Up, KeyModifiers::NONE);
    chat.effects.clear();
    press(&mut chat, Key::Enter, KeyModifiers::NONE);
    assert_eq!(
        chat.effects,
        [Effect::React { room: "general".into(), seq: 1, emoji: "👍".into(), remove: true }]
    );
    // Esc closes the picker and nothing is sent.
    select_up(&mut chat, 1);
    typed(&mut chat, "+tad");
    chat.effects.clear();
    press(&mut chat, Key::Esc, KeyModifiers::NONE);
    assert!(chat.picker.is_none() && chat.effects.is_empty());
}

fn thread_page() -> ThreadOk {
    let mut root = msg("general", 1, "bob", "lunch at noon?", T0);
    root.replies = 2;
    let replies = (0..2u64)
        .map(|i| {
            let mut m = msg("general", 2 + i * 10, "ann", &format!("answer {i}"), T0 + 60_000);
            m.reply_to = reply(1, "bob", "lunch at noon?");
            m
        })
        .collect();
    ThreadOk { room: "general".into(), message: root, messages: replies, more: true }
}

#[test]
fn snapshot_the_thread_view_pages_and_takes_replies() {
    let mut chat = main_chat(features());
    select_up(&mut chat, 5);
    chat.effects.clear();
    typed(&mut chat, "t");
    assert_eq!(chat.effects, [Effect::Thread { room: "general".into(), seq: 1, after: None }]);
    chat.update(Msg::Net(NetEvent::Thread { first: true, page: Box::new(thread_page()) }));
    let screen = render(&mut chat, 80, 24);
    insta::assert_snapshot!("thread_80x24", screen);
    assert!(screen.contains("Thread of #1 in general") && screen.contains("answer 1"), "{screen}");
    // At its end, the next page is asked for.
    chat.effects.clear();
    chat.update(Msg::View(ViewMsg::Bottom));
    let more = Effect::Thread { room: "general".into(), seq: 1, after: Some(12) };
    assert_eq!(chat.effects, std::slice::from_ref(&more));
    chat.update(Msg::View(ViewMsg::Bottom));
    assert_eq!(chat.effects.len(), 1, "once while it is on its way");
    // It failed: the next try asks again.
    chat.update(Msg::Net(NetEvent::ThreadFailed { room: "general".into(), seq: 1 }));
    chat.effects.clear();
    chat.update(Msg::View(ViewMsg::Bottom));
    assert_eq!(chat.effects, [more]);
    let mut next = thread_page();
    next.messages = vec![{
        let mut m = msg("general", 20, "cy", "late answer", T0 + 90_000);
        m.reply_to = reply(1, "bob", "lunch at noon?");
        m
    }];
    next.more = false;
    chat.update(Msg::Net(NetEvent::Thread { first: false, page: Box::new(next) }));
    // A line sent from the thread view replies to its message; the reply
    // arriving shows in it.
    chat.effects.clear();
    typed(&mut chat, "me too");
    press(&mut chat, Key::Enter, KeyModifiers::NONE);
    assert!(
        matches!(&chat.effects[..], [Effect::Send { reply_to: Some(1), .. }]),
        "{:?}",
        chat.effects
    );
    let mut mine = msg("general", 21, "ann", "me too", T0 + 100_000);
    mine.reply_to = reply(1, "bob", "lunch at noon?");
    live(&mut chat, mine);
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("late answer") && screen.contains("me too"), "{screen}");
    // Esc goes back to the room.
    press(&mut chat, Key::Esc, KeyModifiers::NONE);
    assert!(chat.thread.is_none());
    let screen = render(&mut chat, 80, 24);
    assert!(!screen.contains("Thread of"), "{screen}");
}

#[test]
fn a_live_reply_does_not_make_the_thread_skip_unloaded_pages() {
    let mut chat = main_chat(features());
    select_up(&mut chat, 5);
    typed(&mut chat, "t");
    chat.update(Msg::Net(NetEvent::Thread { first: true, page: Box::new(thread_page()) }));
    let replies = |chat: &Chat| chat.thread.as_ref().and_then(|t| t.message(1)).map(|m| m.replies);
    let before = replies(&chat);
    // A reply arrives live while later pages are still on the server.
    let mut late = msg("general", 30, "cy", "live answer", T0 + 95_000);
    late.reply_to = reply(1, "bob", "lunch at noon?");
    live(&mut chat, late);
    assert_eq!(replies(&chat), before.map(|n| n + 1), "counted on the thread's message");
    // The next page still starts after the last one loaded (12), not after
    // the live reply (30), and the live one comes with the pages.
    chat.effects.clear();
    chat.update(Msg::View(ViewMsg::Bottom));
    assert_eq!(chat.effects, [Effect::Thread { room: "general".into(), seq: 1, after: Some(12) }]);
    let screen = render(&mut chat, 80, 24);
    assert!(!screen.contains("live answer"), "not shown before the pages between: {screen}");
}

#[test]
fn a_click_selects_a_message() {
    let mut chat = main_chat(features());
    let screen = render(&mut chat, 80, 24);
    let row = screen.lines().position(|l| l.contains("closed today")).expect("shown");
    let row = u16::try_from(row).expect("small");
    chat.update(Msg::Mouse(super::super::app::MouseMsg {
        kind: super::super::app::MouseKind::Click,
        col: 40,
        row,
    }));
    assert_eq!(chat.room().and_then(|r| r.selected), Some(3));
    assert!(chat.selecting());
    // The message keys act on it.
    chat.update(Msg::OnMessage(MessageAction::Reply, None));
    assert!(chat.compose.is_some());
}

#[test]
fn clicking_a_search_hit_jumps_to_it() {
    let mut chat = main_chat(conversation());
    searched(&mut chat);
    let screen = render(&mut chat, 80, 24);
    let row = screen.lines().position(|l| l.contains("#5 李雷")).expect("the second hit");
    chat.update(Msg::Mouse(super::super::app::MouseMsg {
        kind: super::super::app::MouseKind::Click,
        col: 30,
        row: u16::try_from(row).expect("small"),
    }));
    assert!(chat.search.is_none() && chat.popup.is_none());
    assert_eq!(chat.current, chat.find("dev"));
    assert!(
        chat.effects.contains(&Effect::LoadTo { room: "dev".into(), before: None, seq: 5 }),
        "{:?}",
        chat.effects
    );
}

#[test]
fn typing_shows_for_a_while_and_is_sent_at_most_every_few_seconds() {
    let mut chat = main_chat(features());
    chat.update(Msg::Net(NetEvent::Members {
        room: "general".into(),
        members: vec![MemberInfo {
            user: "bob".into(),
            online: true,
            role: None,
            display_name: Some("Bob B.".into()),
        }],
    }));
    let t = Typing { room: "general".into(), room_id: "+0".into(), user: "bob".into() };
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Typing(t))));
    let screen = render(&mut chat, 100, 30);
    assert!(screen.contains("Bob B. (bob) is typing…"), "{screen}");
    assert!(screen.contains("● Bob B. (bob)"), "the member list:\n{screen}");
    // His message ends it.
    live(&mut chat, msg("general", 6, "bob", "here", T0 + 500_000));
    assert_eq!(chat.typing_line(), None);
    // It expires on its own after 6 s.
    let t = Typing { room: "general".into(), room_id: "+0".into(), user: "bob".into() };
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Typing(t))));
    chat.wall = || T0 + 605_000;
    chat.update(Msg::Tick);
    assert!(chat.typing_line().is_some());
    chat.wall = || T0 + 607_000;
    chat.update(Msg::Tick);
    assert_eq!(chat.typing_line(), None);
    // Typing here tells the room, once per 3 s; commands do not.
    chat.send_typing = true;
    chat.effects.clear();
    typed(&mut chat, "hel");
    assert_eq!(chat.effects, [Effect::Typing("general".into())]);
    chat.wall = || T0 + 611_000;
    typed(&mut chat, "lo");
    assert_eq!(chat.effects.len(), 2);
    chat.input.take();
    chat.wall = || T0 + 620_000;
    typed(&mut chat, "/who");
    assert_eq!(chat.effects.len(), 2);
}

#[test]
fn a_read_marker_moved_elsewhere_sets_the_counts() {
    let mut chat = main_chat(conversation());
    let dev = chat.find("dev").expect("dev");
    assert_eq!(chat.rooms[dev].info.unread, 3);
    // A mention arrives: counted, and shown in the rooms pane.
    let mut m = msg("dev", 8, "bob", "@ann look", T0);
    m.mentions = Some(Box::new(vec!["ann".into()]));
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Message(m))));
    assert_eq!((chat.rooms[dev].info.unread, chat.rooms[dev].info.mentions), (4, 1));
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("│ dev      4 @1│"), "{screen}");
    // Another connection read up to 6: the server's counts after it.
    let read = |seq, counts: Option<(u64, u64)>| crate::ReadEvent {
        room: "dev".into(),
        room_id: "+1".into(),
        seq,
        last_seq: None,
        unread: counts.map(|c| c.0),
        mentions: counts.map(|c| c.1),
    };
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Read(read(6, Some((2, 1)))))));
    assert_eq!((chat.rooms[dev].info.unread, chat.rooms[dev].info.mentions), (2, 1));
    assert_eq!(chat.rooms[dev].info.read_seq, 6);
    // An older server says no counts: read to the end, nothing is left.
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Read(read(8, None)))));
    assert_eq!((chat.rooms[dev].info.unread, chat.rooms[dev].info.mentions), (0, 0));
    assert!(!chat.rooms[dev].mention);
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains("│ dev          │"), "{screen}");
    // Bob's 9 arrives before the event of a read (to 8) whose counts were
    // taken at last_seq 8: it counts on top of them. Then counts taken at
    // 10 arrive before bob's 10: it is in them, not counted again.
    let mut m = msg("dev", 9, "bob", "@ann again", T0);
    m.mentions = Some(Box::new(vec!["ann".into()]));
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Message(m))));
    let at = |seq, last_seq, counts: (u64, u64)| crate::ReadEvent {
        last_seq: Some(last_seq),
        ..read(seq, Some(counts))
    };
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Read(at(8, 8, (0, 0))))));
    assert_eq!((chat.rooms[dev].info.unread, chat.rooms[dev].info.mentions), (1, 1));
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Read(at(9, 10, (1, 0))))));
    let ten = msg("dev", 10, "bob", "late", T0);
    chat.update(Msg::Net(NetEvent::Client(ClientEvent::Message(ten))));
    assert_eq!((chat.rooms[dev].info.unread, chat.rooms[dev].info.mentions), (1, 0));
}

#[test]
fn a_lost_read_is_sent_again_when_the_server_is_behind() {
    let mut chat = main_chat(conversation());
    render(&mut chat, 80, 24);
    // The tick reads general to 6 and asks the server to mark it.
    chat.update(Msg::Tick);
    let again = Effect::MarkRead { room: "general".into(), seq: 6 };
    assert_eq!(chat.effects, std::slice::from_ref(&again));
    chat.effects.clear();
    // That mark_read was lost: the server's listing still says 4. The local
    // marker stays, and the read goes out again.
    chat.update(Msg::Net(NetEvent::Rooms(vec![room("general", true, 6, 4)])));
    let general = chat.find("general").expect("general");
    assert_eq!(chat.rooms[general].info.read_seq, 6);
    assert_eq!(chat.effects, [again]);
    chat.effects.clear();
    chat.update(Msg::Tick);
    assert!(chat.effects.is_empty(), "the tick has nothing new: {:?}", chat.effects);
    // Once the server has it, nothing more is sent.
    chat.update(Msg::Net(NetEvent::Rooms(vec![room("general", true, 6, 6)])));
    assert!(chat.effects.is_empty(), "{:?}", chat.effects);
}

#[test]
fn scrolled_back_the_first_selection_is_in_view() {
    let msgs: Vec<Message> =
        (1..=60).map(|s| msg("general", s, "bob", &format!("m{s}"), T0 + s as i64)).collect();
    let mut chat = main_chat(msgs);
    render(&mut chat, 80, 24);
    for _ in 0..3 {
        chat.update(Msg::View(ViewMsg::PageUp));
    }
    let anchor = chat.room().expect("room").anchor;
    select_up(&mut chat, 1);
    let seq = chat.room().and_then(|r| r.selected).expect("selected");
    assert!(seq < 40, "a message in view, not the newest: #{seq}");
    assert_eq!(chat.room().expect("room").anchor, anchor, "the view stays");
    let screen = render(&mut chat, 80, 24);
    assert!(screen.contains(&format!(" m{seq} ")), "{screen}");
    // Down past the newest leaves the selection, at the bottom.
    for _ in 0..70 {
        press(&mut chat, Key::Down, KeyModifiers::CONTROL);
    }
    assert_eq!(chat.room().and_then(|r| r.selected), None);
    assert_eq!(chat.room().expect("room").anchor, Anchor::Bottom);
}

#[test]
fn the_message_keys_work_in_the_thread_view_too() {
    let mut chat = main_chat(features());
    chat.update(Msg::Net(NetEvent::Thread { first: true, page: Box::new(thread_page()) }));
    // Ctrl-Up selects in the thread: its newest reply, then up.
    select_up(&mut chat, 1);
    assert_eq!(chat.thread.as_ref().and_then(|t| t.selected), Some(12));
    assert_eq!(chat.room().and_then(|r| r.selected), None, "not the room's");
    let screen = render(&mut chat, 100, 30);
    assert!(screen.contains("#12: e edit · d delete"), "{screen}");
    // A reaction from the picker goes to the thread's message.
    typed(&mut chat, "+");
    chat.effects.clear();
    press(&mut chat, Key::Enter, KeyModifiers::NONE);
    assert_eq!(
        chat.effects,
        [Effect::React { room: "general".into(), seq: 12, emoji: "👍".into(), remove: false }]
    );
    // It arrives: the thread's copy shows it.
    let mut react = change(30, ChangeKind::Reacted, "ann", 12);
    if let Some(c) = react.change.as_deref_mut() {
        c.emoji = Some("👍".into());
    }
    live(&mut chat, react);
    let screen = render(&mut chat, 100, 30);
    assert!(screen.contains("[👍 1]"), "{screen}");
    // Her own reply: `e` edits it; Esc cancels, Esc leaves the selection,
    // Esc leaves the thread.
    select_up(&mut chat, 2);
    typed(&mut chat, "e");
    assert_eq!(chat.input.text, "answer 0");
    assert!(matches!(chat.compose, Some(Compose::Edit { seq: 2, .. })));
    press(&mut chat, Key::Esc, KeyModifiers::NONE);
    select_up(&mut chat, 1);
    press(&mut chat, Key::Esc, KeyModifiers::NONE);
    assert!(chat.thread.as_ref().is_some_and(|t| t.selected.is_none()));
    press(&mut chat, Key::Esc, KeyModifiers::NONE);
    assert!(chat.thread.is_none());
}

#[test]
fn a_search_hit_too_far_back_says_how_to_reach_it() {
    let mut chat = main_chat(conversation());
    let dev = chat.find("dev").expect("dev");
    chat.open_room(dev);
    let page: Vec<Message> =
        (900..=905).map(|s| msg("dev", s, "bob", &format!("d{s}"), T0 + s as i64)).collect();
    chat.update(Msg::Net(NetEvent::History {
        older: true,
        page: MessagesOk { room: "dev".into(), messages: page, more: true },
    }));
    chat.update(Msg::Net(NetEvent::Loaded { room: "dev".into(), seq: 5 }));
    assert_eq!(
        chat.notice.as_deref(),
        Some("#5 is further back in dev: Home loads older messages")
    );
    // One that is loaded is shown.
    chat.update(Msg::Net(NetEvent::Loaded { room: "dev".into(), seq: 903 }));
    assert_eq!(chat.notice.as_deref(), Some("dev #903"));
}
