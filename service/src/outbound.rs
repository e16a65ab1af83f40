//! A connection's bounded outbound queue. Replies wait for room (backpressure
//! on that client only); events never wait: when the queue is full the event
//! is dropped, the room is remembered, and the connection's writer sends a
//! `lagged` event so the client resyncs from history. A slow reader can
//! therefore never slow a room down. Replies that wait get the room the
//! writer frees before any event does.
//!
//! The writer takes whatever is queued (up to [`BATCH`] frames) in one go and
//! hands the shared `Bytes` to quinn as they are (`write_all_chunks`): no copy
//! per subscriber, and one stream write, one connection lock and one wake of
//! the connection driver per batch instead of per frame.
//!
//! One allocation per connection while it is idle: a mutex over a
//! `VecDeque` that grows as frames arrive (and is let go once a backlog has
//! drained) and two `Notify`s. tokio's bounded channel, used before, held
//! about 1.3 KiB per connection (a block of 32 slots allocated up front and
//! cache-padded halves; docs/BENCHMARKS.md, "Idle connections").

use std::collections::{BTreeSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use tokio::sync::Notify;

use crate::db::RoomLabel;

/// Sending half of a connection's outbound queue; cheap to clone.
#[derive(Debug)]
pub(crate) struct Outbound {
    queue: Arc<Queue>,
}

/// Receiving half, owned by the connection's writer.
#[derive(Debug)]
pub(crate) struct OutboundRx {
    queue: Arc<Queue>,
}

#[derive(Debug)]
struct Queue {
    state: Mutex<State>,
    /// Live [`Outbound`] handles; the writer ends when none is left.
    senders: AtomicUsize,
    /// Wakes the writer: a frame was queued into an empty queue, a room
    /// lagged, or the last sender went away.
    ready: Notify,
    /// Wakes the replies waiting for room: the writer took frames, or is
    /// gone.
    room: Notify,
}

#[derive(Debug)]
struct State {
    frames: VecDeque<Bytes>,
    /// Most frames queued at once.
    capacity: usize,
    /// Replies waiting for room. Events see the queue as full while any
    /// wait, so the room the writer frees goes to the replies first.
    waiting: usize,
    /// Rooms whose events were dropped since the writer last looked.
    lagged: BTreeSet<RoomLabel>,
    /// The receiving half is gone: nothing more is queued.
    closed: bool,
}

/// Most frames the writer takes from the queue at once.
pub(crate) const BATCH: usize = 64;

/// Most frames' room a drained queue (and the writer's batch) keeps; more
/// is let go, so that a burst (presence during a log-in storm) leaves
/// nothing behind in the connections that then stay idle.
pub(crate) const KEEP: usize = 4;

/// The connection is gone.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Closed;

/// A queue of at most `capacity` frames (at least 1).
pub(crate) fn channel(capacity: usize) -> (Outbound, OutboundRx) {
    let queue = Arc::new(Queue {
        state: Mutex::new(State {
            frames: VecDeque::new(),
            capacity: capacity.max(1),
            waiting: 0,
            lagged: BTreeSet::new(),
            closed: false,
        }),
        senders: AtomicUsize::new(1),
        ready: Notify::new(),
        room: Notify::new(),
    });
    (Outbound { queue: queue.clone() }, OutboundRx { queue })
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Clone for Outbound {
    fn clone(&self) -> Self {
        self.queue.senders.fetch_add(1, Ordering::Relaxed);
        Self { queue: self.queue.clone() }
    }
}

impl Drop for Outbound {
    fn drop(&mut self) {
        if self.queue.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.queue.ready.notify_one();
        }
    }
}

/// A reply's place among the waiting ones; given back when its send ends,
/// queued or cancelled.
struct Waiting<'a> {
    queue: &'a Queue,
    /// Still counted in [`State::waiting`].
    counted: bool,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.counted {
            return;
        }
        let mut state = self.queue.lock();
        state.waiting -= 1;
        let room = state.frames.len() < state.capacity;
        drop(state);
        // A cancelled wait may have been woken for room it will not take.
        if room {
            self.queue.room.notify_waiters();
        }
    }
}

impl Outbound {
    /// Queues a reply, waiting for room.
    pub(crate) async fn send(&self, frame: Bytes) -> Result<(), Closed> {
        let queue = &*self.queue;
        let mut waiting: Option<Waiting<'_>> = None;
        loop {
            // Registered before looking, so room freed meanwhile wakes it.
            let notified = queue.room.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let mut state = queue.lock();
                if state.closed {
                    return Err(Closed);
                }
                if state.frames.len() < state.capacity {
                    let was_empty = state.frames.is_empty();
                    state.frames.push_back(frame);
                    if let Some(w) = &mut waiting {
                        state.waiting -= 1;
                        w.counted = false;
                    }
                    drop(state);
                    if was_empty {
                        queue.ready.notify_one();
                    }
                    return Ok(());
                }
                if waiting.is_none() {
                    state.waiting += 1;
                    waiting = Some(Waiting { queue, counted: true });
                }
            }
            notified.await;
        }
    }

    /// Queues an event of `room` without waiting; on a full queue, marks the
    /// room lagged instead.
    pub(crate) fn offer(&self, frame: Bytes, room: &RoomLabel) {
        let mut state = self.queue.lock();
        if state.closed {
            return;
        }
        if state.frames.len() + state.waiting < state.capacity {
            let was_empty = state.frames.is_empty();
            state.frames.push_back(frame);
            drop(state);
            if was_empty {
                self.queue.ready.notify_one();
            }
        } else if !state.lagged.contains(room) {
            state.lagged.insert(room.clone());
            drop(state);
            self.queue.ready.notify_one();
        }
    }

    /// Queues an event that belongs to no room (presence) without waiting;
    /// dropped on a full queue (the client sees current presence with `members`).
    pub(crate) fn offer_any(&self, frame: Bytes) {
        let mut state = self.queue.lock();
        if !state.closed && state.frames.len() + state.waiting < state.capacity {
            let was_empty = state.frames.is_empty();
            state.frames.push_back(frame);
            drop(state);
            if was_empty {
                self.queue.ready.notify_one();
            }
        }
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
    /// them), or reports lagged rooms first. `None` when every sender is gone
    /// and nothing is queued. Cancel-safe: nothing is taken unless it returns.
    pub(crate) async fn next(&mut self, frames: &mut Vec<Bytes>) -> Option<Next> {
        let queue = &*self.queue;
        loop {
            // Looked at before the queue, so a last sender that leaves
            // after that look is seen on the next round (its drop wakes us).
            let senders = queue.senders.load(Ordering::Acquire);
            {
                let mut state = queue.lock();
                if !state.lagged.is_empty() {
                    let rooms = std::mem::take(&mut state.lagged);
                    return Some(Next::Lagged(rooms.into_iter().collect()));
                }
                if !state.frames.is_empty() {
                    let n = state.frames.len().min(BATCH);
                    frames.extend(state.frames.drain(..n));
                    // A burst's room is let go once it has drained: an
                    // idle connection holds at most the smallest buffer.
                    if state.frames.is_empty() && state.frames.capacity() > KEEP {
                        state.frames = VecDeque::new();
                    }
                    let wake = state.waiting > 0;
                    drop(state);
                    if wake {
                        queue.room.notify_waiters();
                    }
                    return Some(Next::Frames);
                }
                if senders == 0 {
                    return None;
                }
            }
            queue.ready.notified().await;
        }
    }
}

impl Drop for OutboundRx {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        state.closed = true;
        state.frames = VecDeque::new();
        state.lagged = BTreeSet::new();
        drop(state);
        self.queue.room.notify_waiters();
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
    async fn a_waiting_reply_gets_the_room_before_events() {
        let (tx, mut rx) = channel(1);
        tx.offer(Bytes::from_static(b"event 1"), &room("a"));
        let reply = tx.clone();
        let mut waiting = Box::pin(reply.send(Bytes::from_static(b"reply")));
        // Full: the reply waits (polled once, so it is counted as waiting).
        assert!(futures_poll_once(waiting.as_mut()).await.is_none());
        let mut frames = Vec::new();
        assert_eq!(rx.next(&mut frames).await, Some(Next::Frames));
        assert_eq!(frames, vec![Bytes::from_static(b"event 1")]);
        // The room freed is the reply's: this event is dropped as lagged.
        tx.offer(Bytes::from_static(b"event 2"), &room("b"));
        assert!(waiting.await.is_ok());
        frames.clear();
        assert_eq!(rx.next(&mut frames).await, Some(Next::Lagged(vec![room("b")])));
        assert_eq!(rx.next(&mut frames).await, Some(Next::Frames));
        assert_eq!(frames, vec![Bytes::from_static(b"reply")]);
    }

    #[tokio::test]
    async fn a_cancelled_reply_gives_its_place_back() {
        let (tx, mut rx) = channel(1);
        tx.offer(Bytes::from_static(b"1"), &room("a"));
        {
            let mut waiting = Box::pin(tx.send(Bytes::from_static(b"never")));
            assert!(futures_poll_once(waiting.as_mut()).await.is_none());
        }
        let mut frames = Vec::new();
        assert_eq!(rx.next(&mut frames).await, Some(Next::Frames));
        tx.offer(Bytes::from_static(b"2"), &room("a"));
        frames.clear();
        assert_eq!(rx.next(&mut frames).await, Some(Next::Frames));
        assert_eq!(frames, vec![Bytes::from_static(b"2")]);
    }

    #[tokio::test]
    async fn replies_fail_once_the_writer_is_gone() {
        let (tx, rx) = channel(4);
        drop(rx);
        assert!(tx.send(Bytes::from_static(b"1")).await.is_err());
        tx.offer(Bytes::from_static(b"2"), &room("a"));
    }

    #[tokio::test]
    async fn a_writer_waiting_sees_the_last_sender_go() {
        let (tx, mut rx) = channel(4);
        let writer = tokio::spawn(async move {
            let mut frames = Vec::new();
            let first = rx.next(&mut frames).await;
            (first, rx.next(&mut frames).await, frames)
        });
        tokio::task::yield_now().await;
        tx.offer_any(Bytes::from_static(b"1"));
        drop(tx);
        let (first, second, frames) = writer.await.expect("writer");
        assert_eq!(first, Some(Next::Frames));
        assert_eq!(second, None);
        assert_eq!(frames, vec![Bytes::from_static(b"1")]);
    }

    /// Polls `fut` once: `Some` when it completed.
    async fn futures_poll_once<F: Future + Unpin>(fut: F) -> Option<F::Output> {
        let mut fut = fut;
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match std::pin::Pin::new(&mut fut).poll(cx) {
                std::task::Poll::Ready(v) => Some(v),
                std::task::Poll::Pending => None,
            })
        })
        .await
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
