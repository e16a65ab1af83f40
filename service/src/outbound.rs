//! A connection's bounded outbound queue. Replies wait for room (backpressure
//! on that client only); events never wait: when the queue is full the event
//! is dropped, the room is remembered, and the connection's writer sends a
//! `lagged` event so the client resyncs from history. A slow reader can
//! therefore never slow a room down.
//!
//! The writer takes whatever is queued (up to [`BATCH`] frames) in one go and
//! hands the shared `Bytes` to quinn as they are (`write_all_chunks`): no copy
//! per subscriber, and one stream write, one connection lock and one wake of
//! the connection driver per batch instead of per frame.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::db::RoomLabel;

/// Sending half of a connection's outbound queue; cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct Outbound {
    tx: mpsc::Sender<Bytes>,
    lag: Arc<Lag>,
}

/// Rooms whose events were dropped. No wake-up is needed: an event is only
/// dropped when the queue is full, so the writer has frames to take and will
/// look here before it next waits.
#[derive(Debug, Default)]
struct Lag {
    rooms: Mutex<BTreeSet<RoomLabel>>,
    /// Set after a room is added, so the writer's check costs one atomic
    /// load when nothing lagged.
    pending: AtomicBool,
}

/// Receiving half, owned by the connection's writer task.
#[derive(Debug)]
pub(crate) struct OutboundRx {
    rx: mpsc::Receiver<Bytes>,
    lag: Arc<Lag>,
}

/// Most frames the writer takes from the queue at once.
pub(crate) const BATCH: usize = 64;

/// The connection is gone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Closed;

pub(crate) fn channel(capacity: usize) -> (Outbound, OutboundRx) {
    let (tx, rx) = mpsc::channel(capacity);
    let lag = Arc::new(Lag::default());
    (Outbound { tx, lag: lag.clone() }, OutboundRx { rx, lag })
}

impl Outbound {
    /// Queues a reply, waiting for room.
    pub(crate) async fn send(&self, frame: Bytes) -> Result<(), Closed> {
        self.tx.send(frame).await.map_err(|_| Closed)
    }

    /// Queues an event of `room` without waiting; on a full queue, marks the
    /// room lagged instead.
    pub(crate) fn offer(&self, frame: Bytes, room: &RoomLabel) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(frame) {
            self.lag.rooms.lock().unwrap_or_else(PoisonError::into_inner).insert(room.clone());
            self.lag.pending.store(true, Ordering::Release);
        }
    }

    /// Queues an event that belongs to no room (presence) without waiting;
    /// dropped on a full queue (the client sees current presence with `members`).
    pub(crate) fn offer_any(&self, frame: Bytes) {
        let _ = self.tx.try_send(frame);
    }
}

/// What the writer should do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Write the frames just appended to the caller's buffer (at least one).
    Frames,
    /// Events of these rooms were dropped: send `lagged` for each.
    Lagged(Vec<RoomLabel>),
}

impl OutboundRx {
    /// Waits for the next thing to write: appends up to [`BATCH`] queued
    /// frames, in order, to `frames` (which the caller empties after writing
    /// them), or reports lagged rooms first. `None` when every sender is gone.
    pub(crate) async fn next(&mut self, frames: &mut Vec<Bytes>) -> Option<Next> {
        let lagged = self.take_lagged();
        if !lagged.is_empty() {
            return Some(Next::Lagged(lagged));
        }
        let n = self.rx.recv_many(frames, BATCH).await;
        (n > 0).then_some(Next::Frames)
    }

    fn take_lagged(&self) -> Vec<RoomLabel> {
        if !self.lag.pending.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        let mut rooms = self.lag.rooms.lock().unwrap_or_else(PoisonError::into_inner);
        std::mem::take(&mut *rooms).into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(name: &str) -> RoomLabel {
        RoomLabel { name: name.to_owned(), id: format!("+{name:0>16}") }
    }

    #[tokio::test]
    async fn full_queue_turns_into_lagged() {
        let (tx, mut rx) = channel(2);
        tx.offer(Bytes::from_static(b"1"), &room("a"));
        tx.offer(Bytes::from_static(b"2"), &room("a"));
        tx.offer(Bytes::from_static(b"3"), &room("a"));
        tx.offer(Bytes::from_static(b"4"), &room("b"));
        let mut frames = Vec::new();
        match rx.next(&mut frames).await {
            Some(Next::Lagged(rooms)) => assert_eq!(rooms, vec![room("a"), room("b")]),
            _ => panic!("expected lagged first"),
        }
        assert_eq!(rx.next(&mut frames).await, Some(Next::Frames));
        assert_eq!(frames, vec![Bytes::from_static(b"1"), Bytes::from_static(b"2")]);
        drop(tx);
        assert!(rx.next(&mut frames).await.is_none());
    }

    #[tokio::test]
    async fn lag_while_the_writer_is_busy_is_reported_next() {
        let (tx, mut rx) = channel(1);
        tx.offer(Bytes::from_static(b"1"), &room("a"));
        let mut frames = Vec::new();
        assert_eq!(rx.next(&mut frames).await, Some(Next::Frames));
        // The writer is writing frame 1; the queue fills and drops one.
        tx.offer(Bytes::from_static(b"2"), &room("a"));
        tx.offer(Bytes::from_static(b"3"), &room("b"));
        frames.clear();
        assert_eq!(rx.next(&mut frames).await, Some(Next::Lagged(vec![room("b")])));
        assert_eq!(rx.next(&mut frames).await, Some(Next::Frames));
        assert_eq!(frames, vec![Bytes::from_static(b"2")]);
    }

    #[tokio::test]
    async fn batches_are_bounded_and_in_order() {
        let (tx, mut rx) = channel(BATCH * 2);
        for i in 0..BATCH + 3 {
            tx.offer(Bytes::from(i.to_string()), &room("a"));
        }
        let mut frames = Vec::new();
        assert_eq!(rx.next(&mut frames).await, Some(Next::Frames));
        assert_eq!(frames.len(), BATCH);
        frames.clear();
        assert_eq!(rx.next(&mut frames).await, Some(Next::Frames));
        let rest: Vec<String> =
            frames.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        let want: Vec<String> = (BATCH..BATCH + 3).map(|i| i.to_string()).collect();
        assert_eq!(rest, want);
    }
}
