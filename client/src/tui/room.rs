//! A room as the UI keeps it ([`RoomState`]): its timeline (messages, event
//! lines, unacknowledged sends; see [`super::timeline`]), where the view is,
//! and what is loaded. Inserting and removing keep the view where it is.

use crate::{MemberInfo, Message, RoomInfo};

use super::changes;
use super::layout::Anchor;
use super::timeline::{EventKind, EventLine, Item, Pending, SendState};

/// A room as the UI keeps it.
#[derive(Debug, Clone)]
pub(crate) struct RoomState {
    /// Name, membership, unread count.
    pub(crate) info: RoomInfo,
    /// The timeline, sorted by [`Item::key`], no duplicates.
    pub(crate) items: Vec<Item>,
    /// Where the view is.
    pub(crate) anchor: Anchor,
    /// Older messages exist on the server.
    pub(crate) more_history: bool,
    /// A history request is out.
    pub(crate) loading: bool,
    /// The first page was asked for.
    pub(crate) opened: bool,
    /// The new-messages marker goes after this seq.
    pub(crate) marker_seq: u64,
    /// An unread message mentions the user.
    pub(crate) mention: bool,
    /// Members (when fetched).
    pub(crate) members: Vec<MemberInfo>,
    /// The message selected (its seq), which the message keys act on.
    pub(crate) selected: Option<u64>,
    /// Who is typing here, and until when (Unix ms, the wall clock).
    pub(crate) typing: Vec<(String, i64)>,
    /// Event lines so far (orders those after the same seq).
    events: u64,
}

impl RoomState {
    /// A room from the server's listing.
    pub(crate) fn new(info: RoomInfo) -> Self {
        let marker_seq = info.read_seq;
        Self {
            info,
            items: Vec::new(),
            anchor: Anchor::Bottom,
            more_history: true,
            loading: false,
            opened: false,
            marker_seq,
            mention: false,
            members: Vec::new(),
            selected: None,
            typing: Vec::new(),
            events: 0,
        }
    }

    /// What to call the room: a private room's name, a DM's `@` list of
    /// the others (its `name` on the wire is its id), else its name.
    pub(crate) fn title(&self) -> &str {
        self.info.title.as_deref().unwrap_or(&self.info.name)
    }

    /// The heading of the rooms pane's direct messages, above the first.
    pub(crate) const DMS_HEADING: &'static str = "Direct messages";

    /// Whether it is a direct message.
    pub(crate) fn is_dm(&self) -> bool {
        self.info.kind == crate::RoomKind::Dm
    }

    /// The loaded messages, oldest first.
    pub(crate) fn messages(&self) -> impl DoubleEndedIterator<Item = &Message> {
        self.items.iter().filter_map(Item::msg)
    }

    /// Follows a `read` event: the marker, and the server's counts with
    /// the messages heard past them added ([`RoomInfo::follow_read`]).
    pub(crate) fn follow_read(&mut self, ev: &crate::ReadEvent, me: &str) {
        let heard = self.items.iter().rev().filter_map(Item::msg);
        let at = ev.last_seq.unwrap_or(u64::MAX);
        self.info.follow_read(ev, heard.take_while(|m| m.seq > at), me);
    }

    /// Takes the server's room object as the room's figures, with the
    /// messages heard past them added ([`RoomInfo::refresh`]).
    pub(crate) fn refresh(&mut self, fresh: RoomInfo, me: &str) {
        let at = fresh.last_seq;
        let heard = self.items.iter().rev().filter_map(Item::msg);
        self.info.refresh(fresh, heard.take_while(|m| m.seq > at), me);
    }

    /// The newest loaded message.
    pub(crate) fn newest(&self) -> Option<&Message> {
        self.messages().next_back()
    }

    /// The lowest loaded seq.
    pub(crate) fn oldest(&self) -> Option<u64> {
        self.messages().next().map(|m| m.seq)
    }

    /// Whether message `seq` is loaded.
    pub(crate) fn has(&self, seq: u64) -> bool {
        self.items.binary_search_by_key(&(seq, 0), Item::key).is_ok()
    }

    /// Where an item with `key` goes (or is).
    fn position(&self, key: (u64, u64)) -> Result<usize, usize> {
        self.items.binary_search_by_key(&key, Item::key)
    }

    /// Puts `item` in its place (nothing when one with its key is there),
    /// keeping the view where it is.
    fn place(&mut self, item: Item) {
        let Err(at) = self.position(item.key()) else { return };
        self.items.insert(at, item);
        if let Anchor::Top { index, .. } = &mut self.anchor
            && at <= *index
        {
            *index += 1;
        }
    }

    /// Takes item `at` out, keeping the view where it is.
    fn remove(&mut self, at: usize) -> Item {
        if let Anchor::Top { index, offset } = &mut self.anchor {
            if at < *index {
                *index -= 1;
            } else if at == *index {
                *offset = 0;
            }
        }
        let item = self.items.remove(at);
        if let Anchor::Top { index, .. } = self.anchor
            && index >= self.items.len()
        {
            self.anchor = Anchor::Bottom;
        }
        item
    }

    /// Inserts messages (any order, duplicates ignored), keeping the view
    /// where it is when older ones land before it. A send acknowledged as
    /// one of them stops being shown as pending. An edit, deletion or
    /// reaction not seen before changes the loaded message it names
    /// (`me`: the user, whose reactions are marked), unless that message
    /// comes with it (then it shows the change already).
    pub(crate) fn insert(&mut self, msgs: impl IntoIterator<Item = Message>, me: &str) {
        let mut msgs: Vec<Message> = msgs.into_iter().collect();
        msgs.sort_by_key(|m| m.seq);
        msgs.dedup_by_key(|m| m.seq);
        // What changes or answers a message loaded before (not in this
        // page, which shows it as it is now).
        let earlier = |t: u64| msgs.binary_search_by_key(&t, |x| x.seq).is_err();
        let changes: Vec<Message> = msgs
            .iter()
            .filter(|m| changes::target(m).is_some_and(earlier) && !self.has(m.seq))
            .cloned()
            .collect();
        let replied: Vec<u64> = msgs
            .iter()
            .filter_map(|m| m.reply_to.as_ref().map(|q| q.seq).filter(|_| !self.has(m.seq)))
            .filter(|&p| earlier(p))
            .collect();
        // An older page goes in front in one move (100,000 loaded messages
        // must not be shifted once per message).
        if let (Some(first), Some(newest)) = (self.items.first(), msgs.last())
            && (newest.seq, 0) < first.key()
        {
            let k = msgs.len();
            self.items.splice(0..0, msgs.into_iter().map(Item::Msg));
            if let Anchor::Top { index, .. } = &mut self.anchor {
                *index += k;
            }
        } else {
            for m in msgs {
                self.info.last_seq = self.info.last_seq.max(m.seq);
                self.place(Item::Msg(m));
            }
        }
        for c in &changes {
            self.apply(c, me);
        }
        for p in replied {
            if let Ok(at) = self.position((p, 0))
                && let Item::Msg(m) = &mut self.items[at]
            {
                m.replies += 1;
            }
        }
        self.drop_sent();
    }

    /// Applies change message `c` to the loaded message it names and to
    /// the quotes of the loaded replies to that message.
    pub(crate) fn apply(&mut self, c: &Message, me: &str) {
        let Some(target) = changes::target(c) else { return };
        if let Ok(at) = self.position((target, 0))
            && let Item::Msg(m) = &mut self.items[at]
        {
            changes::apply(m, c, me);
        }
        for it in &mut self.items[..] {
            if let Item::Msg(m) = it
                && m.reply_to.as_ref().is_some_and(|q| q.seq == target)
            {
                changes::apply_to_quote(m, c);
            }
        }
    }

    /// The loaded message `seq`.
    pub(crate) fn message(&self, seq: u64) -> Option<&Message> {
        self.position((seq, 0)).ok().and_then(|at| self.items[at].msg())
    }

    /// Moves the selection one message up (`back`) or down, over system
    /// lines; from none, up selects the newest. Down past the newest
    /// selects none. Looks only from the selection on (a binary search).
    pub(crate) fn select_step(&mut self, back: bool) {
        let selectable =
            |it: &Item| it.msg().filter(|m| m.kind != crate::MessageKind::System).map(|m| m.seq);
        let next = match (self.selected, back) {
            (None, true) => self.items.iter().rev().find_map(selectable),
            (None, false) => None,
            (Some(s), true) => {
                let at = self.position((s, 0)).unwrap_or_else(|at| at);
                self.items[..at].iter().rev().find_map(selectable).or(Some(s))
            }
            (Some(s), false) => {
                let at = self.position((s, 1)).unwrap_or_else(|at| at);
                self.items[at..].iter().find_map(selectable)
            }
        };
        self.selected = next;
    }

    /// Adds a line about someone or the connection, after the newest
    /// message known now.
    pub(crate) fn event(&mut self, what: EventKind, ts: i64) {
        self.events += 1;
        let after = self.info.last_seq.max(self.newest().map_or(0, |m| m.seq));
        self.place(Item::Event(EventLine { ts, after, n: self.events, what }));
    }

    /// Shows `body` as being sent (`local` names it until it is done).
    pub(crate) fn pending(&mut self, local: u64, body: String, ts: i64, reply_to: Option<u64>) {
        let state = SendState::Sending;
        self.place(Item::Pending(Pending { local, body, ts, state, reply_to }));
    }

    fn find_pending(&self, local: u64) -> Option<usize> {
        self.position((u64::MAX, local)).ok()
    }

    /// The send `local` was committed as `seq`: gone once that message
    /// is shown (at once if it is already).
    pub(crate) fn sent(&mut self, local: u64, seq: u64) {
        let Some(at) = self.find_pending(local) else { return };
        if self.has(seq) {
            self.remove(at);
        } else if let Item::Pending(p) = &mut self.items[at] {
            p.state = SendState::Sent(seq);
        }
    }

    /// The send `local` failed, for this reason. `false` when it is not
    /// shown here (any more).
    pub(crate) fn failed(&mut self, local: u64, why: String) -> bool {
        let Some(at) = self.find_pending(local) else { return false };
        if let Item::Pending(p) = &mut self.items[at] {
            p.state = SendState::Failed(why);
        }
        true
    }

    /// One's own message arrived live: the first send of the same text
    /// still shown as sending is it (its acknowledgement may come later).
    pub(crate) fn echo(&mut self, body: &str) {
        let at = self.items.iter().position(
            |it| matches!(it, Item::Pending(p) if p.body == body && p.state == SendState::Sending),
        );
        if let Some(at) = at {
            self.remove(at);
        }
    }

    /// Sends acknowledged as a message that is shown now go.
    fn drop_sent(&mut self) {
        // Pending sends are the last items: look only there.
        let shown: Vec<usize> = (0..self.items.len())
            .rev()
            .map_while(|at| match &self.items[at] {
                Item::Pending(p) => Some((at, p.state.clone())),
                _ => None,
            })
            .filter_map(|(at, state)| match state {
                SendState::Sent(seq) if self.has(seq) => Some(at),
                _ => None,
            })
            .collect();
        // Highest first, so the others keep their index.
        for at in shown {
            self.remove(at);
        }
    }

    /// The failed sends, to send again: (local id, text, the message it
    /// replies to), each marked as sending again.
    pub(crate) fn retry_failed(&mut self) -> Vec<(u64, String, Option<u64>)> {
        let mut out = Vec::new();
        for it in &mut self.items {
            if let Item::Pending(p) = it
                && matches!(p.state, SendState::Failed(_))
            {
                p.state = SendState::Sending;
                out.push((p.local, p.body.clone(), p.reply_to));
            }
        }
        out
    }

    /// Takes the newest failed send out, for editing: its text.
    pub(crate) fn take_failed(&mut self) -> Option<String> {
        let at = self.items.iter().rposition(
            |it| matches!(it, Item::Pending(p) if matches!(p.state, SendState::Failed(_))),
        )?;
        match self.remove(at) {
            Item::Pending(p) => Some(p.body),
            _ => None,
        }
    }

    /// Forgets the messages and event lines (the room was left); sends
    /// not acknowledged stay, to be seen failing.
    pub(crate) fn clear_loaded(&mut self) {
        self.items.retain(|it| matches!(it, Item::Pending(_)));
        self.anchor = Anchor::Bottom;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(seq: u64, body: &str) -> Message {
        Message::text("r", seq, "ann", seq as i64, body)
    }

    fn room() -> RoomState {
        RoomState::new(RoomInfo {
            name: "r".into(),
            joined: true,
            last_seq: 0,
            read_seq: 0,
            unread: 0,
            mentions: 0,
            id: None,
            kind: crate::RoomKind::Public,
            title: None,
            role: None,
            invited: false,
            topic: None,
            archived: false,
        })
    }

    fn keys(r: &RoomState) -> Vec<(u64, u64)> {
        r.items.iter().map(Item::key).collect()
    }

    #[test]
    fn events_sort_after_the_newest_message_and_pending_last() {
        let mut r = room();
        r.insert([m(1, "a"), m(2, "b")], "ann");
        r.pending(1, "mine".into(), 10, None);
        r.event(EventKind::Joined("bob".into()), 5);
        r.event(EventKind::Left("cy".into()), 6);
        r.insert([m(3, "c")], "ann");
        assert_eq!(keys(&r), [(1, 0), (2, 0), (2, 1), (2, 2), (3, 0), (u64::MAX, 1)]);
        // An older page goes in front, events stay after their message.
        r.anchor = Anchor::Top { index: 2, offset: 0 };
        r.insert([m(0, "z")], "ann");
        assert_eq!(r.items[3].key(), (2, 1));
        assert_eq!(r.anchor, Anchor::Top { index: 3, offset: 0 }, "the view stays on the event");
    }

    #[test]
    fn a_send_is_pending_until_its_message_shows() {
        let mut r = room();
        r.pending(1, "hello".into(), 1, None);
        r.pending(2, "again".into(), 2, None);
        // Acknowledged before the message arrives: still shown.
        r.sent(1, 5);
        assert!(matches!(&r.items[0], Item::Pending(p) if p.state == SendState::Sent(5)));
        r.insert([m(5, "hello")], "ann");
        assert_eq!(keys(&r), [(5, 0), (u64::MAX, 2)]);
        // The message first (live echo), the acknowledgement after.
        r.echo("again");
        assert_eq!(keys(&r), [(5, 0)]);
        r.sent(2, 6);
        assert_eq!(keys(&r), [(5, 0)], "nothing left to mark");
        // Acknowledged after the message is shown: gone at once.
        r.pending(3, "third".into(), 3, None);
        r.insert([m(7, "third (edited by the server?)")], "ann");
        r.sent(3, 7);
        assert_eq!(keys(&r), [(5, 0), (7, 0)]);
    }

    #[test]
    fn failed_sends_are_retried_or_taken_back() {
        let mut r = room();
        r.pending(1, "one".into(), 1, None);
        r.pending(2, "two".into(), 2, None);
        assert!(r.failed(1, "forbidden".into()));
        assert!(r.failed(2, "too large".into()));
        assert!(!r.failed(9, "gone".into()));
        assert_eq!(r.take_failed().as_deref(), Some("two"));
        assert_eq!(r.retry_failed(), [(1, "one".to_owned(), None)]);
        assert!(matches!(&r.items[0], Item::Pending(p) if p.state == SendState::Sending));
        assert_eq!(r.take_failed(), None);
        r.echo("one");
        assert!(r.items.is_empty());
    }

    #[test]
    fn removing_keeps_the_view() {
        let mut r = room();
        r.insert([m(1, "a"), m(2, "b")], "ann");
        r.pending(1, "x".into(), 3, None);
        r.failed(1, "no".into());
        r.anchor = Anchor::Top { index: 1, offset: 2 };
        r.take_failed();
        assert_eq!(r.anchor, Anchor::Top { index: 1, offset: 2 });
        r.pending(2, "y".into(), 4, None);
        r.failed(2, "no".into());
        r.anchor = Anchor::Top { index: 2, offset: 1 };
        r.take_failed();
        assert_eq!(r.anchor, Anchor::Bottom, "the item shown on top went: the newest");
    }
}
