//! Every bound the protocol promises. A peer that exceeds one gets the error or
//! close code documented next to it in `docs/PROTOCOL.md`.

/// ALPN protocol identifier negotiated in the TLS handshake.
pub const ALPN: &[u8] = b"qchat/1";

/// Protocol version reported by `hello`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Default UDP port of `qchatd`.
pub const DEFAULT_PORT: u16 = 4433;

/// Length of the frame header: a big-endian `u32` payload length.
pub const FRAME_HEADER_LEN: usize = 4;

/// Largest frame payload (the JSON object) in bytes. A larger declared length
/// closes the connection with [`crate::CloseCode::FrameTooLarge`].
pub const MAX_FRAME_LEN: usize = 1 << 20;

/// Largest text message body in bytes (UTF-8). Larger gets `too_large`.
pub const MAX_BODY_LEN: usize = 16 * 1024;

/// Longest tenant, user or room name in bytes.
pub const MAX_NAME_LEN: usize = 64;

/// Longest password in bytes (argon2 input; keeps hashing bounded).
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Shortest password accepted by `register`.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Longest `client_msg_id` in bytes.
pub const MAX_CLIENT_MSG_ID_LEN: usize = 64;

/// Most members of a direct message, the caller included (the fewest is 2).
pub const MAX_DM_MEMBERS: usize = 16;

/// Longest room topic in bytes.
pub const MAX_TOPIC_LEN: usize = 1024;

/// Longest kick or ban reason in bytes.
pub const MAX_REASON_LEN: usize = 256;

/// Longest reaction (an emoji, or a short code such as `:+1:`) in bytes.
pub const MAX_EMOJI_LEN: usize = 64;

/// Most different reactions one message holds (each emoji counts once,
/// however many users gave it), so a message always fits in a page.
pub const MAX_REACTIONS: usize = 64;

/// Shortest time between two `typing` events the server relays for one
/// user in one room, in milliseconds; more frequent ones are dropped.
pub const TYPING_INTERVAL_MS: u64 = 3_000;

/// How long a `typing` event holds, in milliseconds: a client shows the
/// user as typing until then unless another one renews it.
pub const TYPING_EXPIRES_MS: u64 = 6_000;

/// `unread` and `mentions` counts stop here: a count of this value means
/// this many or more (a client shows `1000+`).
pub const MAX_UNREAD_COUNT: u64 = 1000;

/// Characters of a parent's body a reply carries (`reply_to.excerpt`).
pub const MAX_EXCERPT_CHARS: usize = 100;

/// First character of a room id: `+` and [`ROOM_ID_HEX`] lower-case hex
/// digits, which no name can be (names never hold `+`).
pub const ROOM_ID_PREFIX: char = '+';

/// Hex digits of a room id after [`ROOM_ID_PREFIX`].
pub const ROOM_ID_HEX: usize = 16;

/// First character of a direct message's alias in requests: `@` and the
/// other members' names, comma-separated (`@bob,carol`).
pub const DM_ALIAS_PREFIX: char = '@';

/// Whether `s` is a room id: `+` and 16 lower-case hex digits.
pub fn valid_room_id(s: &str) -> bool {
    s.strip_prefix(ROOM_ID_PREFIX).is_some_and(|hex| {
        hex.len() == ROOM_ID_HEX && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    })
}

/// Most messages one `history` or `sync` reply carries.
pub const MAX_PAGE: u32 = 500;

/// Page size when a request gives no `limit`.
pub const DEFAULT_PAGE: u32 = 50;

/// Most JSON values (objects, arrays and their elements or members) one
/// request may hold; more gets `bad_request` before it is parsed. Real
/// requests hold a dozen; the bound keeps what parsing allocates close to
/// the frame's own size (a 1 MiB frame of `[],[],...` would otherwise
/// become some 20 MiB of parsed values).
pub const MAX_REQUEST_VALUES: usize = 1024;

/// Deepest nesting of objects and arrays in a request, the top-level object
/// being level 1. Deeper is invalid JSON here (it is serde_json's recursion
/// limit; a test keeps the two equal), answered with `re: null`.
pub const MAX_REQUEST_DEPTH: usize = 127;

/// Largest request `id`, 2^53 - 1: every JSON implementation holds integers
/// up to it exactly.
pub const MAX_REQUEST_ID: u64 = (1 << 53) - 1;

/// Longest error `message` in bytes; longer ones are cut (with `…`).
pub const MAX_ERROR_MESSAGE_LEN: usize = 256;

/// Characters of a client's input that an error message may quote; the
/// rest is cut (with `…`), and control characters are escaped.
pub const MAX_QUOTED_CHARS: usize = 32;

/// Checks a tenant, user or room name: 1..=[`MAX_NAME_LEN`] bytes of ASCII
/// letters, digits, `-`, `_` and `.`, not starting with `.` or `-`.
///
/// Names travel in events and are shown in terminals, so they are kept to a
/// set that cannot carry control characters or look like paths.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with(['.', '-'])
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_name("general"));
        assert!(valid_name("a.b-c_d9"));
        assert!(!valid_name(""));
        assert!(!valid_name("../etc"));
        assert!(!valid_name("-rf"));
        assert!(!valid_name("has space"));
        assert!(!valid_name("ünï"));
        assert!(!valid_name(&"x".repeat(MAX_NAME_LEN + 1)));
        assert!(valid_name(&"x".repeat(MAX_NAME_LEN)));
    }

    #[test]
    fn room_ids() {
        assert!(valid_room_id("+0123456789abcdef"));
        assert!(!valid_room_id("+0123456789ABCDEF"));
        assert!(!valid_room_id("+0123456789abcde"));
        assert!(!valid_room_id("0123456789abcdef0"));
        assert!(!valid_name("+0123456789abcdef"), "an id is never a name");
        assert!(!valid_name("@bob"), "an alias is never a name");
    }
}
