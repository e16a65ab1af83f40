//! Per-room delivery order on one node: each room's messages reach the
//! node's subscribers in seq order and once, whichever node committed them.
//!
//! On a single node the committer publishes in commit order and this is a
//! formality. In a cluster, messages of one room committed on other nodes
//! arrive over the bus, and two nodes' messages can arrive in either order:
//! a message past the next expected seq is held, and the gap is reported so
//! that the bus fills it from the database; anything at or below the last
//! delivered seq is a duplicate (a backfill and the live path both brought
//! it) and is dropped.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;

use crate::db::{RoomId, RoomLabel, TenantId};

/// Messages held past a gap before the room stops waiting for them and
/// counts on the backfill alone (a bound on memory, not on correctness).
pub(super) const MAX_HELD: usize = 4096;

/// One message event, serialized.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    /// The room's seq of the message.
    pub(crate) seq: u64,
    /// How the room is called on the wire (for `lagged`).
    pub(crate) label: RoomLabel,
    /// The encoded `message` event.
    pub(crate) frame: Bytes,
}

/// Where one room stands.
#[derive(Debug, Default)]
struct Room {
    /// The room's tenant and label, once known (a backfill needs them).
    meta: Option<(TenantId, RoomLabel)>,
    /// The highest seq delivered (every lower one was delivered or
    /// predates the node's baseline).
    last: u64,
    /// Messages past a gap, by seq.
    held: BTreeMap<u64, Frame>,
}

/// What [`Order::accept`] decided.
#[derive(Debug, Default)]
pub(super) struct Accepted {
    /// Deliver these now, in this order.
    pub(super) deliver: Vec<Frame>,
    /// A gap opened after this seq: the bus should backfill from it.
    pub(super) gap_after: Option<u64>,
}

/// Every room's order state.
#[derive(Debug, Default)]
pub(super) struct Order {
    rooms: HashMap<RoomId, Room>,
}

impl Order {
    /// Sets a room's baseline: every seq up to `last` counts as delivered.
    /// Never moves a room back.
    pub(super) fn baseline(
        &mut self,
        room: RoomId,
        tenant: TenantId,
        label: &RoomLabel,
        last: u64,
    ) {
        let r = self.rooms.entry(room).or_default();
        r.meta = Some((tenant, label.clone()));
        if last > r.last {
            r.last = last;
            r.held = r.held.split_off(&(last + 1));
        }
    }

    /// The last seq delivered in `room` and whether messages wait past a gap.
    pub(super) fn position(&self, room: RoomId) -> (u64, bool) {
        self.rooms.get(&room).map_or((0, false), |r| (r.last, !r.held.is_empty()))
    }

    /// Takes one message: in order, it is delivered with whatever it
    /// unblocks; a duplicate is dropped; past a gap it is held. With
    /// `strict` false (a single node, where no gap can be filled from
    /// elsewhere) a message past a gap is delivered at once.
    pub(super) fn accept(
        &mut self,
        room: RoomId,
        tenant: TenantId,
        msg: Frame,
        strict: bool,
    ) -> Accepted {
        let r = self.rooms.entry(room).or_default();
        if r.meta.is_none() {
            r.meta = Some((tenant, msg.label.clone()));
        }
        let mut out = Accepted::default();
        if msg.seq <= r.last {
            return out;
        }
        if msg.seq == r.last + 1 || !strict {
            r.last = msg.seq;
            out.deliver.push(msg);
            while let Some(next) = r.held.remove(&(r.last + 1)) {
                r.last = next.seq;
                out.deliver.push(next);
            }
            // Whatever is still held sits past a new gap.
            if !r.held.is_empty() {
                out.gap_after = Some(r.last);
            }
            return out;
        }
        let first_held = r.held.is_empty();
        r.held.insert(msg.seq, msg);
        if r.held.len() > MAX_HELD {
            // Keep the newest; the backfill brings the rest.
            let _ = r.held.pop_first();
        }
        if first_held {
            out.gap_after = Some(r.last);
        }
        out
    }

    /// Every room with a known tenant and label: `(room, tenant, label,
    /// last delivered)`.
    pub(super) fn known(&self) -> Vec<(RoomId, TenantId, RoomLabel, u64)> {
        self.rooms
            .iter()
            .filter_map(|(id, r)| r.meta.as_ref().map(|(t, n)| (*id, *t, n.clone(), r.last)))
            .collect()
    }

    /// Drops the held messages of a room that has no subscriber here and
    /// moves its baseline past them (nobody here waits for them).
    pub(super) fn skip_held(&mut self, room: RoomId) {
        if let Some(r) = self.rooms.get_mut(&room) {
            if let Some((&seq, _)) = r.held.last_key_value() {
                r.last = r.last.max(seq);
            }
            r.held.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: TenantId = TenantId(1);

    fn label() -> RoomLabel {
        RoomLabel { name: "r".into(), id: "+0000000000000001".into() }
    }

    fn f(seq: u64) -> Frame {
        Frame { seq, label: label(), frame: Bytes::from(seq.to_string()) }
    }

    fn seqs(a: &Accepted) -> Vec<u64> {
        a.deliver.iter().map(|m| m.seq).collect()
    }

    #[test]
    fn in_order_duplicates_and_gaps() {
        let mut o = Order::default();
        let room = RoomId(1);
        assert_eq!(seqs(&o.accept(room, T, f(1), true)), [1]);
        assert!(o.accept(room, T, f(1), true).deliver.is_empty(), "duplicate dropped");
        let held = o.accept(room, T, f(3), true);
        assert!(held.deliver.is_empty());
        assert_eq!(held.gap_after, Some(1));
        // A second message past the same gap reports nothing new.
        assert_eq!(o.accept(room, T, f(5), true).gap_after, None);
        assert_eq!(o.position(room), (1, true));
        // The missing one (say from the backfill) releases what it can.
        let got = o.accept(room, T, f(2), true);
        assert_eq!(seqs(&got), [2, 3]);
        assert_eq!(got.gap_after, Some(3), "5 still waits for 4");
        assert_eq!(seqs(&o.accept(room, T, f(4), true)), [4, 5]);
        assert_eq!(o.position(room), (5, false));
    }

    #[test]
    fn a_single_node_never_holds() {
        let mut o = Order::default();
        assert_eq!(seqs(&o.accept(RoomId(1), T, f(7), false)), [7]);
        assert!(o.accept(RoomId(1), T, f(6), false).deliver.is_empty());
    }

    #[test]
    fn baselines_and_skips() {
        let mut o = Order::default();
        let room = RoomId(2);
        o.baseline(room, T, &label(), 10);
        assert!(o.accept(room, T, f(10), true).deliver.is_empty());
        assert_eq!(seqs(&o.accept(room, T, f(11), true)), [11]);
        o.baseline(room, T, &label(), 3);
        assert_eq!(o.position(room), (11, false), "never moves back");
        let _ = o.accept(room, T, f(14), true);
        o.skip_held(room);
        assert_eq!(o.position(room), (14, false));
        let _ = o.accept(room, T, f(20), true);
        o.baseline(room, T, &label(), 17);
        assert_eq!(o.position(room), (17, true), "held past the baseline stay");
    }
}
