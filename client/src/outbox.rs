//! Unacknowledged sends. Each entry keeps its `client_msg_id` for life, so a
//! resend after a reconnect is recognised by the server as the same message
//! and never stored twice. Bookkeeping only; the supervisor does the I/O.

use std::collections::BTreeMap;

use qchat_protocol::{SendOk, SendReq};
use tokio::sync::oneshot;

use crate::error::ClientError;

/// What a `send` caller eventually receives.
pub(crate) type SendResult = Result<SendOk, ClientError>;

struct Entry {
    req: SendReq,
    /// The connection generation it was last written on; `None` = never.
    sent_on: Option<u64>,
    /// The caller waiting for the outcome (gone if it stopped waiting; the
    /// message is delivered all the same).
    waiter: Option<oneshot::Sender<SendResult>>,
}

/// Pending sends in the order they were made.
#[derive(Default)]
pub(crate) struct Outbox {
    /// Keyed by insertion counter, so resends keep the original order.
    entries: BTreeMap<u64, Entry>,
    next: u64,
}

/// A fresh idempotency key: 128 random bits as 32 hex digits.
pub(crate) fn new_client_msg_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

impl Outbox {
    /// Queues a message (a reply to message `reply_to` of the room, when
    /// set); the receiver yields the server's answer.
    pub(crate) fn push(
        &mut self,
        room: &str,
        body: &str,
        reply_to: Option<u64>,
    ) -> oneshot::Receiver<SendResult> {
        let (tx, rx) = oneshot::channel();
        let req = SendReq {
            room: room.to_owned(),
            client_msg_id: new_client_msg_id(),
            body: body.to_owned(),
            reply_to,
        };
        self.entries.insert(self.next, Entry { req, sent_on: None, waiter: Some(tx) });
        self.next += 1;
        rx
    }

    /// Entries not yet written on connection `generation`, oldest first;
    /// they are marked as written on it.
    pub(crate) fn due(&mut self, generation: u64) -> Vec<SendReq> {
        self.entries
            .values_mut()
            .filter(|e| e.sent_on != Some(generation))
            .map(|e| {
                e.sent_on = Some(generation);
                e.req.clone()
            })
            .collect()
    }

    /// The server answered for `client_msg_id`: remove the entry and tell the
    /// waiter. Unknown ids (already completed) are ignored.
    pub(crate) fn complete(&mut self, client_msg_id: &str, result: SendResult) {
        let key = self
            .entries
            .iter()
            .find(|(_, e)| e.req.client_msg_id == client_msg_id)
            .map(|(k, _)| *k);
        if let Some(mut entry) = key.and_then(|k| self.entries.remove(&k))
            && let Some(waiter) = entry.waiter.take()
        {
            // The caller may have stopped waiting; that is fine.
            let _ = waiter.send(result);
        }
    }

    /// Number of unacknowledged sends.
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// The client is closing for good: every waiter gets `error`.
    pub(crate) fn fail_all(&mut self, error: &ClientError) {
        for (_, mut entry) in std::mem::take(&mut self.entries) {
            if let Some(waiter) = entry.waiter.take() {
                let _ = waiter.send(Err(error.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(seq: u64) -> SendResult {
        Ok(SendOk { seq, ts: 0, duplicate: false, room_mention: None })
    }

    #[test]
    fn ids_are_128_bit_hex_and_distinct() {
        let a = new_client_msg_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, new_client_msg_id());
    }

    #[test]
    fn due_once_per_generation_in_order_with_same_ids() {
        let mut o = Outbox::default();
        let _a = o.push("r", "one", None);
        let _b = o.push("r", "two", None);
        let first = o.due(1);
        assert_eq!(first.iter().map(|r| r.body.as_str()).collect::<Vec<_>>(), ["one", "two"]);
        assert!(o.due(1).is_empty(), "not twice on one connection");
        let again = o.due(2);
        assert_eq!(again, first, "resent with the same client_msg_id after a reconnect");
        assert_eq!(o.len(), 2);
    }

    #[test]
    fn complete_removes_and_answers() {
        let mut o = Outbox::default();
        let mut rx = o.push("r", "x", None);
        let id = o.due(1)[0].client_msg_id.clone();
        o.complete(&id, ok(7));
        assert_eq!(o.len(), 0);
        assert_eq!(rx.try_recv().expect("answered"), ok(7));
        o.complete(&id, ok(8)); // a late duplicate answer is ignored
    }

    #[test]
    fn fail_all_tells_every_waiter() {
        let mut o = Outbox::default();
        let mut a = o.push("r", "x", None);
        drop(o.push("r", "y", None)); // a caller that stopped waiting
        o.fail_all(&ClientError::Closed("quit".into()));
        assert_eq!(o.len(), 0);
        assert_eq!(a.try_recv().expect("answered"), Err(ClientError::Closed("quit".into())));
    }
}
