//! `search`: full-text search over the messages of every room the caller
//! may read.

use serde::{Deserialize, Serialize};

use crate::types::MessageKind;

/// Longest search query, in bytes of UTF-8.
pub const MAX_QUERY_LEN: usize = 256;

/// Most words a query may hold.
pub const MAX_QUERY_TERMS: usize = 16;

/// Most hits in one `search` page (`limit`).
pub const MAX_SEARCH_PAGE: u32 = 100;

/// Hits in a `search` page when the request gives no `limit`.
pub const DEFAULT_SEARCH_PAGE: u32 = 20;

/// `search` fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchReq {
    /// Words to find, all of them, in any order; a word ending in `*`
    /// matches every word it begins. 1..=[`MAX_QUERY_LEN`] bytes holding
    /// 1..=[`MAX_QUERY_TERMS`] words.
    pub query: String,
    /// Only this room (a name, id or DM alias, as any request names a
    /// room; one the caller may read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub room: Option<String>,
    /// Only messages sent by this user (name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// Only messages committed at or after this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// Only messages committed before this time (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<i64>,
    /// Only file messages (their file names are searched like bodies).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub has_file: bool,
    /// The `cursor` of the previous page; absent = from the newest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size, 1..=[`MAX_SEARCH_PAGE`], default [`DEFAULT_SEARCH_PAGE`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// One message found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The room as its messages name it (`room` of a message object).
    pub room: String,
    /// The room's id (`room_id` of a message object).
    pub room_id: String,
    /// The message's seq in the room.
    pub seq: u64,
    /// User name of the sender.
    pub sender: String,
    /// Commit time, ms since the Unix epoch.
    pub ts: i64,
    /// `text` or `file` (a file message's body is its file name).
    pub kind: MessageKind,
    /// Up to about 160 characters of the body around the first word found,
    /// with `…` where it was cut.
    pub excerpt: String,
    /// The words found in `excerpt`: `[start, end)` byte offsets into its
    /// UTF-8, in order, not overlapping.
    pub marks: Vec<[u32; 2]>,
}

/// `search` reply: one page of hits, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchOk {
    /// Hits, newest first (by commit time, then room, then seq).
    pub hits: Vec<SearchHit>,
    /// `true` when more hits follow: ask again with `cursor`.
    pub more: bool,
    /// Where the next page starts (opaque); present when `more` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}
