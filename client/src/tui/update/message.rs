//! The selected message and what the keys do to it: edit (the input takes
//! its text), delete (after a yes), reply, react (the emoji picker), open
//! its thread; the thread view's pages; typing hints both ways.

use crate::tui::app::{Effect, InputMsg, MessageAction, Msg, ViewMsg};
use crate::tui::changes;
use crate::tui::commands;
use crate::tui::layout;
use crate::tui::model::{Chat, Compose, Confirm, Picker, Popup, ThreadView};
use crate::{MessageKind, Role, RoomKind, ThreadOk};

/// How long someone shows as typing after their last hint (ms).
const TYPING_SHOWN: i64 = qchat_protocol::TYPING_EXPIRES_MS as i64;
/// How often this client says the user is typing, at most (ms): the
/// server relays one every 3 s.
const TYPING_EVERY: i64 = 3_000;

/// The overlay title of the emoji picker.
const PICKER_TITLE: &str = "React";
/// The overlay title of the question before a deletion.
const CONFIRM_TITLE: &str = "Delete";

impl Chat {
    /// Whether the message keys act now: a message is selected in the
    /// thread view (when it is up) or the room shown, and no overlay is up.
    pub(crate) fn selecting(&self) -> bool {
        self.popup.is_none() && self.selected_seq().is_some()
    }

    /// The message selected where the keys act: in the thread view when
    /// it is up, else in the room shown.
    pub(crate) fn selected_seq(&self) -> Option<u64> {
        match &self.thread {
            Some(t) => t.selected,
            None => self.room().and_then(|r| r.selected),
        }
    }

    /// The selected message (a copy), and the room it is in.
    fn selected_message(&self) -> Option<(crate::Message, usize)> {
        match &self.thread {
            Some(t) => {
                let m = t.selected.and_then(|s| t.message(s))?.clone();
                Some((m, self.find(&t.room)?))
            }
            None => {
                let i = self.current?;
                let r = self.rooms.get(i)?;
                Some((r.selected.and_then(|s| r.message(s))?.clone(), i))
            }
        }
    }

    /// A key bound to act on the selected message.
    pub(super) fn on_message_key(&mut self, what: MessageAction, otherwise: Option<Box<Msg>>) {
        if !self.selecting() {
            if let Some(m) = otherwise {
                self.update(*m);
            }
            return;
        }
        let Some((m, i)) = self.selected_message() else {
            self.deselect();
            return;
        };
        let r = &self.rooms[i];
        let room = r.info.name.clone();
        let moderator = matches!(r.info.role, Some(Role::Moderator | Role::Owner))
            && r.info.kind != RoomKind::Dm;
        let own = m.sender == self.me;
        if m.deleted.is_some() && what != MessageAction::Thread {
            self.notice = Some(format!("#{} is deleted", m.seq));
            return;
        }
        match what {
            MessageAction::Edit => {
                if !own || m.kind != MessageKind::Text {
                    self.notice = Some("only your own text messages can be edited".into());
                    return;
                }
                self.compose = Some(Compose::Edit { room, seq: m.seq });
                self.input.set(m.body.clone());
                self.deselect();
            }
            MessageAction::Delete => {
                if !own && !moderator {
                    self.notice = Some("only moderators and owners delete others' messages".into());
                    return;
                }
                let whose =
                    if own { "your message".to_owned() } else { format!("{}'s message", m.sender) };
                let text = match m.kind {
                    MessageKind::File => m.file.as_ref().map_or(m.body.clone(), |f| f.name.clone()),
                    _ => m.body.clone(),
                };
                self.popup = Some(Popup::new(
                    CONFIRM_TITLE,
                    vec![
                        format!("Delete {whose} #{}?", m.seq),
                        format!("  {}", changes::excerpt(&text)),
                        String::new(),
                        "y or Enter: delete for everyone · n or Esc: keep it".to_owned(),
                    ],
                ));
                self.confirm = Some(Confirm { room, seq: m.seq, sender: m.sender });
            }
            MessageAction::Reply => {
                let excerpt = changes::excerpt(&m.body);
                self.compose = Some(Compose::Reply { room, seq: m.seq, sender: m.sender, excerpt });
                self.deselect();
            }
            MessageAction::React => {
                let picker = Picker::new(room, m.seq);
                self.popup = Some(self.picker_popup(&picker));
                self.picker = Some(picker);
            }
            MessageAction::Thread => {
                self.notice = Some(format!("opening the thread of #{}…", m.seq));
                self.effects.push(Effect::Thread { room, seq: m.seq, after: None });
            }
        }
    }

    /// Drops the selection (of the thread view when it is up, else of the
    /// room shown).
    pub(crate) fn deselect(&mut self) {
        if let Some(t) = &mut self.thread {
            t.selected = None;
        } else if let Some(r) = self.room_mut() {
            r.selected = None;
        }
    }

    /// The picker as an overlay: what was typed, then one emoji a line,
    /// `▶` before the one Enter gives.
    pub(crate) fn picker_popup(&self, p: &Picker) -> Popup {
        let mut lines = vec![format!("search: :{}", p.query.trim_start_matches(':'))];
        if p.matches.is_empty() {
            lines.push("  no shortcode matches: Enter reacts with what is typed".to_owned());
        }
        for (i, (emoji, code)) in p.matches.iter().enumerate() {
            let mark = if i == p.selected { "▶" } else { " " };
            lines.push(format!("{mark} {emoji}  :{code}:"));
        }
        lines.push(String::new());
        lines.push("type to search · ↑/↓ choose · Enter react (again: take back) · Esc".into());
        Popup::new(&format!("{PICKER_TITLE} to #{}", p.seq), lines)
    }

    /// Keys while the picker or the question before a deletion is up;
    /// `false` when neither is.
    pub(super) fn on_modal_input(&mut self, m: InputMsg) -> bool {
        if let Some(c) = self.confirm.take() {
            match m {
                InputMsg::Char('y' | 'Y') | InputMsg::Submit => {
                    self.notice = Some(format!("deleting #{}…", c.seq));
                    self.effects.push(Effect::Delete { room: c.room, seq: c.seq });
                    self.deselect();
                }
                _ => self.notice = Some(format!("kept {}'s message #{}", c.sender, c.seq)),
            }
            self.popup = None;
            return true;
        }
        let Some(mut p) = self.picker.take() else { return false };
        match m {
            InputMsg::Char(c) => p.push(c),
            InputMsg::Backspace => p.pop(),
            InputMsg::Up => p.step(-1),
            InputMsg::Down => p.step(1),
            InputMsg::KillToStart | InputMsg::KillWordLeft => {
                p.query.clear();
                p.pop();
            }
            InputMsg::Submit => {
                self.popup = None;
                let Some(emoji) = p.choice() else { return true };
                self.react(p.room, p.seq, emoji);
                return true;
            }
            _ => {}
        }
        self.popup = Some(self.picker_popup(&p));
        self.picker = Some(p);
        true
    }

    /// Moves the picker's choice (the scrolling keys while it is up).
    pub(super) fn picker_step(&mut self, m: ViewMsg) -> bool {
        let Some(mut p) = self.picker.take() else { return false };
        match m {
            ViewMsg::LineUp | ViewMsg::PageUp | ViewMsg::Top => p.step(-1),
            ViewMsg::LineDown | ViewMsg::PageDown | ViewMsg::Bottom => p.step(1),
            _ => {
                self.picker = Some(p);
                return false;
            }
        }
        self.popup = Some(self.picker_popup(&p));
        self.picker = Some(p);
        true
    }

    /// Gives `emoji` to message `seq` of `room`, or takes it back when the
    /// user gave it already.
    pub(crate) fn react(&mut self, room: String, seq: u64, emoji: String) {
        let in_thread =
            self.thread.as_ref().filter(|t| t.room == room).and_then(|t| t.message(seq));
        let remove = in_thread
            .or_else(|| self.find(&room).and_then(|i| self.rooms[i].message(seq)))
            .is_some_and(|m| m.reactions.iter().any(|r| r.me && r.emoji == emoji));
        self.notice = Some(if remove {
            format!("taking back {emoji} from #{seq}…")
        } else {
            format!("reacting {emoji} to #{seq}…")
        });
        self.deselect();
        self.effects.push(Effect::React { room, seq, emoji, remove });
    }

    /// Enter while an edit is written: saves it. `false` when no edit is.
    pub(super) fn submit_edit(&mut self) -> bool {
        let Some(Compose::Edit { room, seq }) = self.compose.clone() else { return false };
        let body = commands::emojify(&self.input.text);
        if body.trim().is_empty() {
            self.notice = Some("the text is empty: Esc keeps the message as it is".into());
            return true;
        }
        self.input.take();
        self.compose = None;
        self.notice = Some(format!("saving #{seq}…"));
        self.effects.push(Effect::Edit { room, seq, body });
        true
    }

    /// The message a line sent now answers: the reply being written, or
    /// the thread shown.
    pub(super) fn reply_target(&self, room: &str) -> Option<u64> {
        match (&self.compose, &self.thread) {
            (Some(Compose::Reply { room: r, seq, .. }), _) if r == room => Some(*seq),
            (_, Some(t)) if t.room == room => Some(t.root),
            _ => None,
        }
    }

    /// Esc: leaves, innermost first, the edit or reply being written, the
    /// selection, the thread view. `false` when none was up.
    pub(super) fn escape(&mut self) -> bool {
        match self.compose.take() {
            Some(Compose::Edit { .. }) => {
                self.input.take();
                self.notice = Some("edit cancelled".into());
                return true;
            }
            Some(Compose::Reply { .. }) => {
                self.notice = Some("reply cancelled".into());
                return true;
            }
            None => {}
        }
        if self.selected_seq().is_some() {
            self.deselect();
            return true;
        }
        if self.thread.take().is_some() {
            return true;
        }
        false
    }

    /// A page of a thread came: the view opens on the first.
    pub(super) fn on_thread(&mut self, first: bool, page: ThreadOk) {
        if first {
            self.notice = None;
            self.deselect();
            let ThreadOk { room, message, messages, more } = page;
            self.thread = Some(ThreadView::new(room, message, messages, more));
            return;
        }
        if let Some(t) =
            self.thread.as_mut().filter(|t| t.room == page.room && t.root == page.message.seq)
        {
            t.loading = false;
            t.more = page.more;
            t.add(page.messages);
        }
    }

    /// The thread view scrolls by `delta` rows (`None`: to the top or,
    /// `Some(isize::MAX)`, the bottom); at its end it fetches the next
    /// page.
    pub(super) fn scroll_thread(&mut self, delta: isize) {
        let (_, h) = self.viewport;
        let hint = self.failed_hint();
        let Some(t) = &self.thread else { return };
        let Some(i) = self.find(&t.room) else { return };
        let ctx = self.ctx(&self.rooms[i], &hint);
        let ctx = layout::Ctx { marker_seq: u64::MAX, selected: None, ..ctx };
        let anchor = layout::scroll(&t.items, t.anchor, delta, h, &ctx);
        let at_bottom = layout::window(&t.items, anchor, h, &ctx).at_bottom;
        let Some(t) = self.thread.as_mut() else { return };
        t.anchor = anchor;
        if at_bottom && t.more && !t.loading {
            t.loading = true;
            let (room, seq, after) = (t.room.clone(), t.root, Some(t.last()));
            self.effects.push(Effect::Thread { room, seq, after });
        }
    }

    /// A message arrived live in `room`: the thread view shows it when it
    /// answers the thread's message, and applies it when it changes one
    /// of the thread's messages.
    pub(super) fn thread_sees(&mut self, m: &crate::Message) {
        let me = self.me.clone();
        let Some(t) = self.thread.as_mut().filter(|t| t.room == m.room) else { return };
        if let Some(target) = changes::target(m) {
            for x in t.messages_mut() {
                if x.seq == target {
                    changes::apply(x, m, &me);
                }
                if x.reply_to.as_ref().is_some_and(|q| q.seq == target) {
                    changes::apply_to_quote(x, m);
                }
            }
        } else if m.reply_to.as_ref().is_some_and(|q| q.seq == t.root) {
            // While pages are still to come, the next one starts after the
            // last reply loaded: a live reply added now would make it skip
            // the ones between. Those pages bring it instead.
            let new = if t.more { t.message(m.seq).is_none() } else { t.add(vec![m.clone()]) > 0 };
            if new {
                for x in t.messages_mut().take(1) {
                    x.replies += 1;
                }
            }
        }
    }

    /// Someone is typing in a room: shown for a few seconds.
    pub(super) fn on_typing(&mut self, t: &crate::Typing) {
        if t.user == self.me {
            return;
        }
        let by_id = |r: &crate::tui::model::RoomState| r.info.id.as_deref() == Some(&t.room_id);
        let Some(i) = self.find(&t.room).or_else(|| self.rooms.iter().position(by_id)) else {
            return;
        };
        let until = (self.wall)() + TYPING_SHOWN;
        let r = &mut self.rooms[i];
        r.typing.retain(|(u, _)| *u != t.user);
        r.typing.push((t.user.clone(), until));
    }

    /// Forgets typing hints that ran out; `true` when one did.
    pub(super) fn expire_typing(&mut self) -> bool {
        let now = (self.wall)();
        let mut changed = false;
        for r in &mut self.rooms {
            let before = r.typing.len();
            r.typing.retain(|(_, until)| *until > now);
            changed |= r.typing.len() != before;
        }
        changed
    }

    /// The user typed into the input: tell the room, at most every few
    /// seconds (not for commands, and not when the config says not to).
    pub(super) fn typed(&mut self) {
        if !self.send_typing || self.input.text.starts_with('/') {
            return;
        }
        let Some(room) = self.room().filter(|r| r.info.joined).map(|r| r.info.name.clone()) else {
            return;
        };
        let now = (self.wall)();
        let (last, last_room) = &self.typing_sent;
        if *last_room == room && now - *last < TYPING_EVERY {
            return;
        }
        self.typing_sent = (now, room.clone());
        self.effects.push(Effect::Typing(room));
    }

    /// The typing line of the room shown: `bob is typing…`, names as the
    /// member list has them.
    pub(crate) fn typing_line(&self) -> Option<String> {
        let r = self.room()?;
        let names: Vec<String> = r.typing.iter().map(|(u, _)| self.display_name(r, u)).collect();
        match names.as_slice() {
            [] => None,
            [one] => Some(format!("{one} is typing…")),
            [a, b] => Some(format!("{a} and {b} are typing…")),
            [a, rest @ ..] => Some(format!("{a} and {} others are typing…", rest.len())),
        }
    }

    /// `Ann A. (ann)` when the member list gives a display name, else the
    /// user name.
    pub(crate) fn display_name(&self, r: &crate::tui::model::RoomState, user: &str) -> String {
        r.members
            .iter()
            .find(|m| m.user == user)
            .and_then(|m| m.display_name.as_deref())
            .map_or_else(|| user.to_owned(), |d| format!("{d} ({user})"))
    }
}
