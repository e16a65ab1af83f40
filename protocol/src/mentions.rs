//! `@user` and `@room` in a message body (PROTOCOL.md section 12): the rule
//! the server counts mentions by, here so that a client highlights exactly
//! what the server counts.

use std::ops::Range;

use crate::limits::{MAX_NAME_LEN, valid_name};

/// `@room` (this word, lower-case) mentions every member of the room.
pub const MENTION_ROOM: &str = "room";

/// What a message's `mentions` holds when it says `@room` (a name never
/// holds `@`, so no user's name is this).
pub const MENTION_EVERYONE: &str = "@room";

/// At most this many different names of one body are mentions; the server
/// looks up no more (the rest of the body's `@names` are plain text).
pub const MAX_MENTIONS: usize = 64;

/// A room of at most this many members may be mentioned whole (`@room`)
/// by any member; in a larger one only the `@room` of its owners,
/// moderators and tenant admins mentions everyone (anyone else's is plain
/// text).
pub const MAX_ROOM_MENTION_MEMBERS: u64 = 50;

/// What a body mentions, before the server keeps only the room's members.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mentions {
    /// The names after `@`, each once, in the order they first appear (at
    /// most [`MAX_MENTIONS`]).
    pub names: Vec<String>,
    /// `@room` is in the body.
    pub room: bool,
}

fn name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')
}

/// Where the body says `@name` or `@room`: the byte range of each, `@`
/// included. An `@` starts one at the start of the body or after a byte
/// that is not a name byte (a letter, digit, `-`, `_`, `.`) nor `@`, so
/// `ann@example.com` mentions nobody; the name is the longest run of name
/// bytes after it, without the `.`s it ends with (a sentence's full stop:
/// `thanks @bob.` mentions `bob`), and must be a valid name (at most 64
/// bytes, not starting with `.` or `-`). Names are case-sensitive, as
/// everywhere.
pub fn mention_spans(body: &str) -> Vec<Range<usize>> {
    let bytes = body.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'@' || (i > 0 && (name_byte(bytes[i - 1]) || bytes[i - 1] == b'@')) {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut end = start;
        while end < bytes.len() && name_byte(bytes[end]) {
            end += 1;
        }
        let mut name_end = end;
        while name_end > start && bytes[name_end - 1] == b'.' {
            name_end -= 1;
        }
        // The run is ASCII: slicing at its ends is on character boundaries.
        let name = &body[start..name_end];
        if name.len() <= MAX_NAME_LEN && valid_name(name) {
            out.push(i..name_end);
        }
        i = end.max(i + 1);
    }
    out
}

/// The names and `@room` a body mentions ([`mention_spans`]).
pub fn parse_mentions(body: &str) -> Mentions {
    let mut m = Mentions::default();
    for span in mention_spans(body) {
        let name = &body[span.start + 1..span.end];
        if name == MENTION_ROOM {
            m.room = true;
        } else if m.names.len() < MAX_MENTIONS && !m.names.iter().any(|n| n == name) {
            m.names.push(name.to_owned());
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(body: &str) -> Vec<String> {
        parse_mentions(body).names
    }

    #[test]
    fn what_counts_as_a_mention() {
        assert_eq!(names("@ann hi"), ["ann"]);
        assert_eq!(names("hi @ann, @bob and @ann again"), ["ann", "bob"]);
        assert_eq!(names("thanks @bob."), ["bob"]);
        assert_eq!(names("(@bob) @carol: @dan!"), ["bob", "carol", "dan"]);
        assert_eq!(names("@a.b-c_d ok"), ["a.b-c_d"]);
        assert!(names("mail ann@example.com").is_empty(), "not after a name byte");
        assert!(names("@@ann @ @.x @-x").is_empty());
        assert_eq!(names("@Ann"), ["Ann"], "case-sensitive: Ann, not ann");
        assert!(names(&format!("@{}", "x".repeat(65))).is_empty(), "over 64 bytes");
        assert_eq!(names(&format!("@{}", "x".repeat(64))).len(), 1);
        assert_eq!(names("é@ann ü @bob"), ["ann", "bob"], "after non-ASCII text");
        let room = parse_mentions("@room look @ann");
        assert!(room.room);
        assert_eq!(room.names, ["ann"]);
        assert!(!parse_mentions("@rooms @Room").room);
    }

    #[test]
    fn spans_cover_the_at_sign_and_the_name() {
        let body = "hey @bob. and @room";
        let spans: Vec<&str> = mention_spans(body).into_iter().map(|r| &body[r]).collect();
        assert_eq!(spans, ["@bob", "@room"]);
    }

    #[test]
    fn at_most_64_names() {
        let body: String = (0..100).map(|i| format!("@u{i} ")).collect();
        assert_eq!(names(&body).len(), MAX_MENTIONS);
    }
}
