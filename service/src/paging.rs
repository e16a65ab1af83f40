//! Lists in replies, bounded by their encoded size as well as by count.
//!
//! A reply is one frame, and a frame holds at most
//! [`MAX_FRAME_LEN`](qchat_protocol::MAX_FRAME_LEN) bytes of JSON. A count
//! alone cannot keep a list under that: 50 messages of 16 KiB of control
//! characters are 4.8 MiB once escaped. Every reply that carries a list
//! therefore fills it through [`fill`], which serializes each item once to
//! measure it, takes items in the order the list pages (oldest first for
//! `sync`, newest first for `history`, by name for `rooms` and `members`)
//! while they fit in [`LIST_BUDGET`], and reports `more` when it left one
//! behind, so the client asks for the next page from the last item it got.
//!
//! Every item a list can carry fits in the budget on its own (the largest,
//! a 16 KiB message body of control characters with 64 reactions and a
//! reply's excerpt, is under 128 KiB escaped: `tests::the_largest_message_fits_a_page`), so a page that stops
//! early still holds at least one item and paging always progresses. New
//! list replies (search hits, threads, DM lists) page the same way: a
//! keyset query that yields rows in paging order, [`fill`], and `more` plus
//! a cursor in the reply.

use futures_util::{Stream, TryStreamExt as _};
use qchat_protocol::MAX_FRAME_LEN;
use serde::Serialize;

use crate::error::{Error, Result};

/// Room a list reply leaves for everything but its list: `re`, the `ok`
/// wrapper, a room name, `more`, a cursor (together under 300 bytes today).
pub(crate) const REPLY_RESERVE: usize = 16 * 1024;

/// Bytes the items of one reply's list may take, separators included.
pub(crate) const LIST_BUDGET: usize = MAX_FRAME_LEN - REPLY_RESERVE;

/// A list being filled within a byte budget.
#[derive(Debug)]
pub(crate) struct Page<T> {
    items: Vec<T>,
    left: usize,
}

impl<T: Serialize> Page<T> {
    /// An empty page with `budget` bytes for its items.
    pub(crate) fn with_budget(budget: usize) -> Self {
        Self { items: Vec::new(), left: budget }
    }

    /// Adds `item` if its encoding (and a separator) fits in what is left;
    /// `false`, and the page unchanged, when it does not.
    ///
    /// # Errors
    /// When the item cannot be serialized (a server fault).
    pub(crate) fn push(&mut self, item: T) -> Result<bool> {
        let size = encoded_len(&item)? + 1;
        if size > self.left {
            return Ok(false);
        }
        self.left -= size;
        self.items.push(item);
        Ok(true)
    }

    /// The items taken, in the order they were pushed.
    pub(crate) fn into_items(self) -> Vec<T> {
        self.items
    }
}

/// Takes items from `rows`, which yields them in paging order, until
/// `limit` are taken, the next one would not fit in [`LIST_BUDGET`], or the
/// rows end. Returns the items and `more`: whether a row was left behind.
/// Stops reading `rows` there, so a query needs no row count of its own
/// (and one that asks for `limit + 1` rows learns `more` from the last).
///
/// # Errors
/// A failed row, or a first item too large for any page (which would
/// otherwise send the client an empty page with `more` for ever).
pub(crate) async fn fill<T, E>(
    rows: impl Stream<Item = std::result::Result<T, E>>,
    limit: usize,
) -> Result<(Vec<T>, bool)>
where
    T: Serialize,
    Error: From<E>,
{
    fill_within(rows, limit, LIST_BUDGET).await
}

/// [`fill`] with another budget: what is left of a frame beside something
/// else the reply carries (`thread`'s parent), or a small one in tests.
pub(crate) async fn fill_within<T, E>(
    rows: impl Stream<Item = std::result::Result<T, E>>,
    limit: usize,
    budget: usize,
) -> Result<(Vec<T>, bool)>
where
    T: Serialize,
    Error: From<E>,
{
    let mut page = Page::with_budget(budget);
    let mut taken = 0usize;
    let mut rows = std::pin::pin!(rows);
    while let Some(item) = rows.try_next().await? {
        if taken == limit {
            return Ok((page.into_items(), true));
        }
        if !page.push(item)? {
            if taken == 0 {
                return Err(Error::Internal("a list item larger than a whole page".into()));
            }
            return Ok((page.into_items(), true));
        }
        taken += 1;
    }
    Ok((page.into_items(), false))
}

/// Bytes `value` takes as JSON, counted without keeping them.
pub(crate) fn encoded_len<T: Serialize>(value: &T) -> Result<usize> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer(&mut count, value)
        .map_err(|e| Error::Internal(format!("encoding a list item: {e}")))?;
    Ok(count.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream;
    use proptest::prelude::*;
    use qchat_protocol::{
        Change, ChangeKind, FileInfo, MAX_BODY_LEN, MAX_CLIENT_MSG_ID_LEN, MAX_EMOJI_LEN,
        MAX_EXCERPT_CHARS, MAX_MENTIONS, MAX_NAME_LEN, MAX_PAGE, MAX_REACTIONS, MAX_REASON_LEN,
        MAX_TOPIC_LEN, MemberInfo, MembersOk, Message, MessageKind, MessagesOk, Reaction, ReplyTo,
        Response, Role, RoomInfo, RoomKind, RoomsOk, Tombstone, encode_json,
    };

    fn ok_rows<T>(items: Vec<T>) -> impl Stream<Item = std::result::Result<T, Error>> {
        stream::iter(items.into_iter().map(Ok))
    }

    /// The worst message a room can hold: every string at its longest, in
    /// characters JSON escapes as six bytes each.
    fn worst_message(seq: u64) -> Message {
        let escaped = |n: usize| "\u{1}".repeat(n);
        Message {
            room: "r".repeat(MAX_NAME_LEN),
            seq: u64::MAX - seq,
            sender: "s".repeat(MAX_NAME_LEN),
            ts: i64::MIN,
            kind: MessageKind::File,
            body: escaped(MAX_BODY_LEN),
            client_msg_id: Some(escaped(MAX_CLIENT_MSG_ID_LEN)),
            file: Some(FileInfo {
                id: u64::MAX,
                name: "\"".repeat(255),
                size: u64::MAX,
                hash: "f".repeat(64),
            }),
            room_id: Some("+ffffffffffffffff".into()),
            // Only system messages carry a change, and their body is the
            // change in words: far from the 16 KiB of a user's message
            // (`a_system_message_is_small`); an edit's carries a body,
            // as large as this one's at most.
            change: None,
            edited: Some(i64::MIN),
            deleted: Some(Box::new(Tombstone { by: "d".repeat(MAX_NAME_LEN), ts: i64::MIN })),
            reply_to: Some(Box::new(ReplyTo {
                seq: u64::MAX,
                sender: "p".repeat(MAX_NAME_LEN),
                // Control characters are spaces in an excerpt; `"` is the
                // worst left, two bytes escaped.
                excerpt: "\"".repeat(MAX_EXCERPT_CHARS),
                deleted: true,
            })),
            mentions: Some(Box::new((0..MAX_MENTIONS).map(|i| format!("{i:m>64}")).collect())),
            reactions: (0..MAX_REACTIONS)
                .map(|_| Reaction { emoji: "\"".repeat(MAX_EMOJI_LEN), count: u64::MAX, me: true })
                .collect(),
            replies: u32::MAX,
        }
    }

    #[test]
    fn a_system_message_is_small() {
        // A topic and a reason hold no control characters (the server
        // refuses them), so each escapes to at most twice its bytes.
        let quoted = |n: usize| "\"".repeat(n);
        let change = Change {
            kind: ChangeKind::Topic,
            by: "b".repeat(MAX_NAME_LEN),
            user: Some("u".repeat(MAX_NAME_LEN)),
            role: Some(Role::Moderator),
            topic: Some(quoted(MAX_TOPIC_LEN)),
            name: Some("n".repeat(MAX_NAME_LEN)),
            reason: Some(quoted(MAX_REASON_LEN)),
            seq: Some(u64::MAX),
            body: None,
            emoji: Some(quoted(MAX_EMOJI_LEN)),
        };
        let m = Message {
            kind: MessageKind::System,
            body: format!("{} set the topic: {}", change.by, quoted(MAX_TOPIC_LEN)),
            client_msg_id: None,
            file: None,
            change: Some(Box::new(change)),
            // Nobody reacts or replies to a system message.
            reactions: Box::default(),
            reply_to: None,
            ..worst_message(1)
        };
        assert!(encoded_len(&m).expect("encodes") < 16 * 1024);
    }

    /// A whole reply frame, as the session encodes it.
    fn frame_len<T: Serialize>(payload: &T) -> usize {
        let reply = Response::ok(u64::MAX, payload).expect("to value");
        encode_json(&reply).expect("fits the frame").len()
    }

    #[test]
    fn the_largest_message_fits_a_page() {
        let m = worst_message(1);
        let len = encoded_len(&m).expect("encodes");
        assert!(len < 128 * 1024, "{len} bytes");
        assert!(len * 8 < LIST_BUDGET, "eight of the worst fit a page");
    }

    #[tokio::test]
    async fn worst_case_pages_fit_the_frame() {
        let messages: Vec<_> = (1..=u64::from(MAX_PAGE)).map(worst_message).collect();
        let (page, more) = fill(ok_rows(messages), MAX_PAGE as usize).await.expect("fill");
        assert!(more);
        assert!(page.len() >= 8, "{} messages", page.len());
        let reply = MessagesOk { room: "r".repeat(MAX_NAME_LEN), messages: page, more };
        assert!(frame_len(&reply) <= MAX_FRAME_LEN + 4);

        let room = |i: usize| RoomInfo {
            name: format!("{i:0>64}"),
            joined: true,
            last_seq: u64::MAX,
            read_seq: u64::MAX,
            unread: u64::MAX,
            mentions: u64::MAX,
            id: Some("+ffffffffffffffff".into()),
            kind: RoomKind::Private,
            title: Some(format!("@{}", vec!["u".repeat(MAX_NAME_LEN); 15].join(","))),
            role: Some(Role::Moderator),
            invited: true,
            // A topic holds no control characters (refused): `"` is the
            // worst, two bytes escaped.
            topic: Some("\"".repeat(MAX_TOPIC_LEN)),
            archived: true,
        };
        let (rooms, more) =
            fill(ok_rows((0..20_000).map(room).collect()), usize::MAX).await.expect("fill");
        // About 3.3 KB each at worst (topic and a 15-member DM's title).
        assert!(more && rooms.len() > 250, "{} rooms", rooms.len());
        assert!(frame_len(&RoomsOk { rooms, more }) <= MAX_FRAME_LEN + 4);

        let member = |i: usize| MemberInfo {
            user: format!("{i:0>64}"),
            online: false,
            role: Some(Role::Moderator),
            display_name: Some("\u{1}".repeat(qchat_protocol::MAX_DISPLAY_NAME_LEN)),
        };
        let (members, more) =
            fill(ok_rows((0..20_000).map(member).collect()), usize::MAX).await.expect("fill");
        assert!(more && members.len() > 1000);
        let reply = MembersOk { room: "r".repeat(MAX_NAME_LEN), members, more };
        assert!(frame_len(&reply) <= MAX_FRAME_LEN + 4);
    }

    #[tokio::test]
    async fn count_limit_and_more() {
        let (page, more) = fill(ok_rows(vec![1, 2, 3]), 3).await.expect("fill");
        assert_eq!((page, more), (vec![1, 2, 3], false));
        let (page, more) = fill(ok_rows(vec![1, 2, 3, 4]), 3).await.expect("fill");
        assert_eq!((page, more), (vec![1, 2, 3], true));
        let (page, more) = fill(ok_rows(Vec::<u8>::new()), 3).await.expect("fill");
        assert_eq!((page, more), (vec![], false));
        // "xx" is 4 bytes plus a separator: two fit in 10, not three.
        let (page, more) = fill_within(ok_rows(vec!["xx"; 3]), 9, 10).await.expect("fill");
        assert_eq!((page.len(), more), (2, true));
        let big = fill_within(ok_rows(vec!["too long for the page"]), 9, 10).await;
        assert!(big.is_err(), "an item no page can hold is a fault, not an empty page");
    }

    proptest! {
        /// Paging any list with any budget returns every item exactly once,
        /// in order, each page within its budget.
        #[test]
        fn pages_cover_the_list_exactly_once(
            lens in proptest::collection::vec(0usize..40, 0..60),
            budget in 45usize..200,
            limit in 1usize..10,
        ) {
            let items: Vec<String> = lens.iter().map(|n| "\u{1}".repeat(*n / 6)).collect();
            let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
            let mut got = Vec::new();
            let mut from = 0;
            loop {
                let rest = items[from..].to_vec();
                let (page, more) =
                    rt.block_on(fill_within(ok_rows(rest), limit, budget)).expect("fill");
                let used: usize = page.iter().map(|s| encoded_len(s).expect("len") + 1).sum();
                prop_assert!(used <= budget);
                prop_assert!(page.len() <= limit);
                prop_assert!(!page.is_empty() || !more, "an empty page with more");
                from += page.len();
                got.extend(page);
                if !more {
                    break;
                }
            }
            prop_assert_eq!(got, items);
        }
    }
}
