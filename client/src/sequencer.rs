//! Exactly-once, in-order delivery of room messages, without I/O.
//!
//! The server's `message` events are best effort; history is the truth. The
//! [`Sequencer`] remembers the last seq delivered per room, drops what was
//! already delivered, delivers the next seq at once, and on a gap (or a
//! `lagged` event, or a reconnect) asks its owner to `sync` the room from the
//! last seq. While a room syncs, newer events are held back and merged with
//! the sync pages, so the application sees each (room, seq) once, ascending.
//!
//! Rooms are keyed by their id when the server sends one
//! ([`Message::room_key`]): a public room's name changes with a rename, its
//! id never does. Syncs name the room by the same key (the server accepts
//! an id wherever a room is named).

use std::collections::{BTreeMap, HashMap};

use qchat_protocol::Message;

/// A `sync` the owner must issue: messages of `room` after `after_seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncFrom {
    /// Room to sync.
    pub(crate) room: String,
    /// Last seq held for it.
    pub(crate) after_seq: u64,
}

/// What to do after feeding the sequencer: deliver these messages in order,
/// then issue the sync, if any.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct Step {
    /// Messages to hand to the application, in order.
    pub(crate) deliver: Vec<Message>,
    /// A sync to issue.
    pub(crate) sync: Option<SyncFrom>,
}

#[derive(Debug, Default)]
struct Cursor {
    /// Highest seq delivered (or skipped as already known at tracking time).
    last: u64,
    /// A sync for this room is in flight; events are buffered meanwhile.
    syncing: bool,
    /// Events that arrived ahead of `last + 1`, keyed by seq.
    ahead: BTreeMap<u64, Message>,
}

/// Per-room delivery cursors. See the module documentation.
#[derive(Debug, Default)]
pub(crate) struct Sequencer {
    rooms: HashMap<String, Cursor>,
}

impl Sequencer {
    /// Starts tracking `room` as if everything up to `last_seq` had been
    /// delivered. Tracking an already tracked room never moves it backwards.
    pub(crate) fn track(&mut self, room: &str, last_seq: u64) {
        let cursor = self.rooms.entry(room.to_owned()).or_default();
        cursor.last = cursor.last.max(last_seq);
        cursor.ahead = cursor.ahead.split_off(&(cursor.last + 1));
    }

    /// Stops tracking `room` (after leaving it).
    pub(crate) fn untrack(&mut self, room: &str) {
        self.rooms.remove(room);
    }

    /// Tracked rooms and the last seq delivered for each.
    pub(crate) fn tracked(&self) -> Vec<(String, u64)> {
        let mut rooms: Vec<_> = self.rooms.iter().map(|(r, c)| (r.clone(), c.last)).collect();
        rooms.sort();
        rooms
    }

    /// Whether any room is waiting for a sync.
    pub(crate) fn is_syncing(&self) -> bool {
        self.rooms.values().any(|c| c.syncing)
    }

    /// Feeds one `message` event.
    pub(crate) fn on_message(&mut self, msg: Message) -> Step {
        let Some(cursor) = self.rooms.get_mut(msg.room_key()) else {
            // A room joined elsewhere (another connection of the same user):
            // deliver from here on.
            let room = msg.room_key().to_owned();
            self.track(&room, msg.seq.saturating_sub(1));
            return self.on_message(msg);
        };
        if msg.seq <= cursor.last {
            return Step::default();
        }
        if cursor.syncing {
            cursor.ahead.insert(msg.seq, msg);
            return Step::default();
        }
        if msg.seq == cursor.last + 1 {
            cursor.last = msg.seq;
            return Step { deliver: vec![msg], sync: None };
        }
        let sync = SyncFrom { room: msg.room_key().to_owned(), after_seq: cursor.last };
        cursor.ahead.insert(msg.seq, msg);
        cursor.syncing = true;
        Step { deliver: Vec::new(), sync: Some(sync) }
    }

    /// Feeds a `lagged` event: the room must be synced.
    pub(crate) fn on_lagged(&mut self, room: &str) -> Step {
        match self.rooms.get_mut(room) {
            Some(cursor) if !cursor.syncing => {
                cursor.syncing = true;
                Step {
                    deliver: Vec::new(),
                    sync: Some(SyncFrom { room: room.to_owned(), after_seq: cursor.last }),
                }
            }
            _ => Step::default(),
        }
    }

    /// After a reconnect: every tracked room must be synced. Marks them all
    /// as syncing and returns the syncs to issue.
    pub(crate) fn resync_all(&mut self) -> Vec<SyncFrom> {
        let mut syncs: Vec<_> = self
            .rooms
            .iter_mut()
            .map(|(room, cursor)| {
                cursor.syncing = true;
                SyncFrom { room: room.clone(), after_seq: cursor.last }
            })
            .collect();
        syncs.sort_by(|a, b| a.room.cmp(&b.room));
        syncs
    }

    /// Feeds one page of a `sync` reply for `room` (`more` as in the reply).
    pub(crate) fn on_sync_page(&mut self, room: &str, messages: Vec<Message>, more: bool) -> Step {
        let Some(cursor) = self.rooms.get_mut(room) else {
            return Step::default();
        };
        let mut step = Step::default();
        for msg in messages {
            // History is the truth: accept the page as given, skipping what is
            // already delivered.
            if msg.room_key() == room && msg.seq > cursor.last {
                cursor.last = msg.seq;
                step.deliver.push(msg);
            }
        }
        cursor.ahead = cursor.ahead.split_off(&(cursor.last + 1));
        if more && !step.deliver.is_empty() {
            cursor.syncing = true;
            step.sync = Some(SyncFrom { room: room.to_owned(), after_seq: cursor.last });
            return step;
        }
        cursor.syncing = false;
        // Deliver held-back events that now follow on. If a gap remains
        // although the sync found nothing more, the server's history is the
        // truth: deliver them anyway rather than loop.
        let ahead = std::mem::take(&mut cursor.ahead);
        for (seq, msg) in ahead {
            cursor.last = seq;
            step.deliver.push(msg);
        }
        step
    }

    /// A sync for `room` failed (connection lost, or the room went away).
    /// Held-back events are dropped: the next sync fetches them again.
    pub(crate) fn on_sync_failed(&mut self, room: &str) {
        if let Some(cursor) = self.rooms.get_mut(room) {
            cursor.syncing = false;
            cursor.ahead.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(room: &str, seq: u64) -> Message {
        Message::text(room, seq, "ann", 0, format!("m{seq}"))
    }

    fn seqs(step: &Step) -> Vec<u64> {
        step.deliver.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn in_order_delivers_and_duplicates_drop() {
        let mut s = Sequencer::default();
        s.track("r", 5);
        assert_eq!(s.on_message(msg("r", 5)), Step::default(), "already known at tracking");
        assert_eq!(seqs(&s.on_message(msg("r", 6))), [6]);
        assert_eq!(seqs(&s.on_message(msg("r", 6))), Vec::<u64>::new());
        assert_eq!(seqs(&s.on_message(msg("r", 7))), [7]);
        assert_eq!(s.tracked(), [("r".to_owned(), 7)]);
    }

    #[test]
    fn gap_triggers_sync_and_merges_buffer() {
        let mut s = Sequencer::default();
        s.track("r", 1);
        let step = s.on_message(msg("r", 4));
        assert!(step.deliver.is_empty());
        assert_eq!(step.sync, Some(SyncFrom { room: "r".into(), after_seq: 1 }));
        assert!(s.is_syncing());
        // Events keep arriving while the sync is in flight.
        assert_eq!(s.on_message(msg("r", 5)), Step::default());
        // The sync returns 2..=4 (4 overlaps the buffer).
        let step = s.on_sync_page("r", vec![msg("r", 2), msg("r", 3), msg("r", 4)], false);
        assert_eq!(seqs(&step), [2, 3, 4, 5]);
        assert_eq!(step.sync, None);
        assert!(!s.is_syncing());
        assert_eq!(seqs(&s.on_message(msg("r", 6))), [6]);
    }

    #[test]
    fn sync_pages_until_no_more() {
        let mut s = Sequencer::default();
        s.track("r", 0);
        let step = s.on_lagged("r");
        assert_eq!(step.sync, Some(SyncFrom { room: "r".into(), after_seq: 0 }));
        assert_eq!(s.on_lagged("r"), Step::default(), "one sync at a time");
        let step = s.on_sync_page("r", vec![msg("r", 1), msg("r", 2)], true);
        assert_eq!(seqs(&step), [1, 2]);
        assert_eq!(step.sync, Some(SyncFrom { room: "r".into(), after_seq: 2 }));
        let step = s.on_sync_page("r", vec![msg("r", 3)], false);
        assert_eq!(seqs(&step), [3]);
        assert_eq!(step.sync, None);
    }

    #[test]
    fn persistent_gap_is_accepted_not_looped() {
        let mut s = Sequencer::default();
        s.track("r", 1);
        s.on_message(msg("r", 3));
        let step = s.on_sync_page("r", vec![], false);
        assert_eq!(seqs(&step), [3]);
        assert_eq!(s.tracked(), [("r".to_owned(), 3)]);
    }

    #[test]
    fn resync_all_after_reconnect() {
        let mut s = Sequencer::default();
        s.track("b", 2);
        s.track("a", 7);
        let syncs = s.resync_all();
        assert_eq!(
            syncs,
            [
                SyncFrom { room: "a".into(), after_seq: 7 },
                SyncFrom { room: "b".into(), after_seq: 2 }
            ]
        );
        // An event that raced ahead of the sync is held, then merged once.
        assert_eq!(s.on_message(msg("a", 9)), Step::default());
        let step = s.on_sync_page("a", vec![msg("a", 8), msg("a", 9)], false);
        assert_eq!(seqs(&step), [8, 9]);
        assert!(s.is_syncing(), "b still syncing");
        assert_eq!(seqs(&s.on_sync_page("b", vec![], false)), Vec::<u64>::new());
        assert!(!s.is_syncing());
    }

    #[test]
    fn failed_sync_clears_state_and_allows_retry() {
        let mut s = Sequencer::default();
        s.track("r", 1);
        s.on_message(msg("r", 3));
        s.on_sync_failed("r");
        assert!(!s.is_syncing());
        let step = s.on_message(msg("r", 4));
        assert_eq!(step.sync, Some(SyncFrom { room: "r".into(), after_seq: 1 }));
    }

    #[test]
    fn rooms_are_keyed_by_id_when_there_is_one() {
        let mut s = Sequencer::default();
        s.track("+00000000000000aa", 1);
        // Renamed meanwhile: the name differs, the id does not.
        let named = |name: &str, seq| Message {
            room_id: Some("+00000000000000aa".into()),
            ..msg(name, seq)
        };
        assert_eq!(seqs(&s.on_message(named("old", 2))), [2]);
        assert_eq!(seqs(&s.on_message(named("new", 3))), [3]);
        let step = s.on_message(named("new", 5));
        assert_eq!(step.sync, Some(SyncFrom { room: "+00000000000000aa".into(), after_seq: 3 }));
        let step = s.on_sync_page("+00000000000000aa", vec![named("new", 4)], false);
        assert_eq!(seqs(&step), [4, 5]);
        assert_eq!(s.tracked(), [("+00000000000000aa".to_owned(), 5)]);
    }

    #[test]
    fn tracking_never_moves_back_and_untracked_rooms_start_fresh() {
        let mut s = Sequencer::default();
        assert_eq!(seqs(&s.on_message(msg("new", 10))), [10]);
        s.track("new", 3);
        assert_eq!(s.tracked(), [("new".to_owned(), 10)]);
        s.untrack("new");
        assert!(s.tracked().is_empty());
        assert_eq!(s.on_sync_page("new", vec![msg("new", 11)], false), Step::default());
    }
}
