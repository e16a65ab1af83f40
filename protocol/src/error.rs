//! Stable error codes (in replies) and QUIC application close codes.

use serde::{Deserialize, Serialize};

use crate::limits::{MAX_ERROR_MESSAGE_LEN, MAX_QUOTED_CHARS};

/// Why a request failed. Serialized in `snake_case`; the set is stable: clients
/// may match on it, new codes are only ever added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed: not JSON, unknown op, missing or invalid field.
    BadRequest,
    /// Not logged in, wrong credentials, or an expired or revoked token.
    Unauthorized,
    /// Logged in but not allowed (e.g. not a member of the room).
    Forbidden,
    /// The named tenant, room, user or file does not exist (or is not visible).
    NotFound,
    /// The thing to create already exists.
    Conflict,
    /// A field or payload is larger than its limit.
    TooLarge,
    /// A storage quota would be exceeded.
    QuotaExceeded,
    /// Too many attempts; retry later.
    RateLimited,
    /// The server cannot serve this now (shutting down, overloaded).
    Unavailable,
    /// A server-side fault; details are in the server log, never on the wire.
    Internal,
}

impl ErrorCode {
    /// The wire spelling, e.g. `"bad_request"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::TooLarge => "too_large",
            Self::QuotaExceeded => "quota_exceeded",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `err` object of a failed reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// Human-readable explanation, safe to show to the user.
    pub message: String,
}

impl ErrorBody {
    /// Builds an error body. The message is kept to
    /// [`MAX_ERROR_MESSAGE_LEN`] bytes and control characters in it are
    /// escaped, so an error can never echo more than a little of what a
    /// client sent, nor anything that could disturb a terminal.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: bounded(&message.into()) }
    }
}

/// A short, escaped quotation of client input for an error message: at
/// most [`MAX_QUOTED_CHARS`] characters, control characters escaped
/// (`\u{1}`), `…` when cut, in backticks.
pub fn quote(input: &str) -> String {
    let mut out = String::from("`");
    for (i, c) in input.chars().enumerate() {
        if i == MAX_QUOTED_CHARS {
            out.push('…');
            break;
        }
        push_escaped(&mut out, c);
    }
    out.push('`');
    out
}

fn push_escaped(out: &mut String, c: char) {
    if c.is_control() {
        out.extend(c.escape_unicode());
    } else {
        out.push(c);
    }
}

/// `message` with control characters escaped, cut to
/// [`MAX_ERROR_MESSAGE_LEN`] bytes at a character boundary (ending in `…`).
fn bounded(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_ERROR_MESSAGE_LEN));
    let room = MAX_ERROR_MESSAGE_LEN - '…'.len_utf8();
    for c in message.chars() {
        let before = out.len();
        push_escaped(&mut out, c);
        if out.len() > room {
            out.truncate(before);
            out.push('…');
            return out;
        }
    }
    out
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for ErrorBody {}

/// QUIC application error codes used when either side closes the connection.
/// The close reason bytes carry a short UTF-8 explanation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CloseCode {
    /// Normal close: the client quit or logged out.
    Normal = 0,
    /// The peer broke the framing or stream rules.
    ProtocolError = 1,
    /// A frame declared a length above [`crate::MAX_FRAME_LEN`].
    FrameTooLarge = 2,
    /// The client did not log in within the server's deadline.
    LoginTimeout = 3,
    /// The server is shutting down; reconnect later.
    Shutdown = 4,
    /// The server refuses more connections (overall or from this address).
    ServerBusy = 5,
    /// A server-side fault ended the connection.
    Internal = 6,
    /// The connection's session was revoked (`session.revoke`, `passwd`
    /// from another connection): log in again with the password.
    Revoked = 7,
}

impl CloseCode {
    /// Numeric value sent in the QUIC `CONNECTION_CLOSE` frame.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// Maps a received numeric code back, if it is one of ours.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            0 => Self::Normal,
            1 => Self::ProtocolError,
            2 => Self::FrameTooLarge,
            3 => Self::LoginTimeout,
            4 => Self::Shutdown,
            5 => Self::ServerBusy,
            6 => Self::Internal,
            7 => Self::Revoked,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_snake_case() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::Unauthorized,
            ErrorCode::Forbidden,
            ErrorCode::NotFound,
            ErrorCode::Conflict,
            ErrorCode::TooLarge,
            ErrorCode::QuotaExceeded,
            ErrorCode::RateLimited,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).expect("serializes");
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            let back: ErrorCode = serde_json::from_str(&json).expect("parses");
            assert_eq!(back, code);
        }
    }

    #[test]
    fn messages_are_bounded_and_escaped() {
        let long = "x".repeat(1 << 20);
        let body = ErrorBody::new(ErrorCode::BadRequest, format!("bad: {long}"));
        assert!(body.message.len() <= MAX_ERROR_MESSAGE_LEN, "{}", body.message.len());
        assert!(body.message.starts_with("bad: xxx") && body.message.ends_with('…'));
        let body = ErrorBody::new(ErrorCode::BadRequest, "a\u{1b}[31mb\nc");
        assert_eq!(body.message, "a\\u{1b}[31mb\\u{a}c");
        let wide = "é".repeat(MAX_ERROR_MESSAGE_LEN);
        let body = ErrorBody::new(ErrorCode::BadRequest, wide);
        assert!(body.message.len() <= MAX_ERROR_MESSAGE_LEN && body.message.ends_with('…'));
        assert_eq!(
            ErrorBody::new(ErrorCode::NotFound, "no room named x").message,
            "no room named x"
        );
        assert_eq!(quote("ping"), "`ping`");
        assert_eq!(quote("a\u{0}b"), "`a\\u{0}b`");
        let q = quote(&"y".repeat(1000));
        assert_eq!(q.chars().filter(|c| *c == 'y').count(), MAX_QUOTED_CHARS);
        assert!(q.ends_with("…`"));
    }

    #[test]
    fn close_codes_round_trip() {
        for n in 0..8u64 {
            let code = CloseCode::from_code(n).expect("known");
            assert_eq!(u64::from(code.code()), n);
        }
        assert_eq!(CloseCode::from_code(8), None);
    }
}
