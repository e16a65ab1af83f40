//! File transfer: the stream headers, stream close codes and the file-name
//! sanitizer. Files travel on unidirectional QUIC streams, one per file: a
//! header frame (same framing as the control stream, at most
//! [`MAX_STREAM_HEADER_LEN`] bytes) followed by raw bytes.
//!
//! Content hash: BLAKE3 (256-bit, lower-case hex). It is as collision-resistant
//! as SHA-256 for content addressing and several times faster, so hashing keeps
//! up with loopback QUIC without a second core.

use serde::{Deserialize, Serialize};

/// Largest header frame payload on a file stream.
pub const MAX_STREAM_HEADER_LEN: usize = 4096;

/// Longest file name kept, in bytes (after sanitizing).
pub const MAX_FILE_NAME_LEN: usize = 255;

/// Length of a hex BLAKE3 hash.
pub const HASH_HEX_LEN: usize = 64;

/// Bytes covered by the `head` of a hash-later `upload.begin`: the BLAKE3
/// of a file's first `HEAD_LEN` bytes (of all of it when it is shorter).
pub const HEAD_LEN: u64 = 1024 * 1024;

/// Bytes of the trailer that ends a hash-later upload stream: the raw
/// 32-byte BLAKE3 digest of the whole file.
pub const TRAILER_LEN: usize = 32;

/// Why a file stream's header frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The length prefix announced more than [`MAX_STREAM_HEADER_LEN`] bytes.
    #[error("header of {0} bytes (at most {MAX_STREAM_HEADER_LEN})")]
    TooLarge(usize),
    /// The payload is not the header's JSON object.
    #[error("invalid header: {0}")]
    Invalid(String),
}

/// Length of a file stream's header payload from its 4-byte big-endian
/// prefix. Both sides read the prefix, call this, read that many bytes and
/// pass them to [`decode_stream_header`].
///
/// # Errors
/// [`HeaderError::TooLarge`] past [`MAX_STREAM_HEADER_LEN`]: nothing more
/// should be read from the stream.
pub fn stream_header_len(prefix: [u8; 4]) -> Result<usize, HeaderError> {
    let len = u32::from_be_bytes(prefix) as usize;
    if len > MAX_STREAM_HEADER_LEN {
        return Err(HeaderError::TooLarge(len));
    }
    Ok(len)
}

/// Parses a file stream's header payload ([`UploadHeader`] or
/// [`DownloadHeader`]).
///
/// # Errors
/// [`HeaderError::Invalid`] when the payload is not that header's JSON.
pub fn decode_stream_header<T: serde::de::DeserializeOwned>(
    payload: &[u8],
) -> Result<T, HeaderError> {
    serde_json::from_slice(payload).map_err(|e| HeaderError::Invalid(e.to_string()))
}

/// A file offer — stored content offered to a room under a name by one file
/// message — as carried by file messages and replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// The offer's id, unique within the tenant; use it with `file.get`.
    /// Every offer has its own, also of content offered before: the hash
    /// says when two offers carry the same bytes.
    pub id: u64,
    /// The offer's display name (sanitized; never a path).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// BLAKE3 of the content, lower-case hex.
    pub hash: String,
}

/// First frame of an upload stream (client → server).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadHeader {
    /// From the `upload.begin` reply.
    pub upload_id: String,
    /// Where the following bytes start; must equal the bytes the server holds.
    pub offset: u64,
    /// `true` exactly when the upload was begun without a hash (with
    /// `head`): the bytes are then followed by a [`TRAILER_LEN`]-byte
    /// trailer, the BLAKE3 digest of the whole file.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub trailer: bool,
}

/// First frame of a download stream (server → client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadHeader {
    /// The offer asked for (`file.get`'s `file_id`).
    pub file_id: u64,
    /// The offer's display name, as in the `file.get` reply (sanitized).
    /// Empty from servers that predate it.
    #[serde(default)]
    pub name: String,
    /// Where the following bytes start.
    pub offset: u64,
    /// Whole size of the file; `size - offset` bytes follow.
    pub size: u64,
    /// BLAKE3 of the whole file, lower-case hex.
    pub hash: String,
}

/// QUIC stream error codes used with STOP_SENDING / RESET_STREAM on file
/// streams. The same failure is also reported on the control stream as an
/// `upload.failed` event with the matching [`crate::ErrorCode`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum StreamCode {
    /// The header frame was missing, too large or invalid.
    BadHeader = 1,
    /// No such upload (or another user's, or already finished).
    NotFound = 2,
    /// The offset differs from the bytes held, or the upload is already
    /// being sent on another stream.
    Conflict = 3,
    /// More bytes than declared, or fewer before the stream finished.
    SizeMismatch = 4,
    /// The content's BLAKE3 differs from the declared hash or from the
    /// trailer's digest, or a hash-later stream ended inside its trailer.
    HashMismatch = 5,
    /// The tenant's storage quota would be exceeded.
    QuotaExceeded = 6,
    /// The server is shutting down; resume later.
    Unavailable = 7,
    /// A server-side fault.
    Internal = 8,
    /// The receiver no longer wants the data (download cancelled).
    Cancelled = 9,
    /// The uploader may no longer post in the upload's room (kicked,
    /// banned, the room archived or deleted); the upload is discarded.
    Forbidden = 10,
}

impl StreamCode {
    /// Numeric value on the wire.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// Maps a received code back, if it is one of ours.
    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            1 => Self::BadHeader,
            2 => Self::NotFound,
            3 => Self::Conflict,
            4 => Self::SizeMismatch,
            5 => Self::HashMismatch,
            6 => Self::QuotaExceeded,
            7 => Self::Unavailable,
            8 => Self::Internal,
            9 => Self::Cancelled,
            10 => Self::Forbidden,
            _ => return None,
        })
    }

    /// The error code reported in `upload.failed` for this stream code.
    pub fn error_code(self) -> crate::ErrorCode {
        use crate::ErrorCode as E;
        match self {
            Self::BadHeader | Self::SizeMismatch | Self::HashMismatch => E::BadRequest,
            Self::NotFound => E::NotFound,
            Self::Conflict => E::Conflict,
            Self::QuotaExceeded => E::QuotaExceeded,
            Self::Unavailable | Self::Cancelled => E::Unavailable,
            Self::Internal => E::Internal,
            Self::Forbidden => E::Forbidden,
        }
    }
}

/// Whether `s` is a lower-case hex BLAKE3 hash.
pub fn valid_hash(s: &str) -> bool {
    s.len() == HASH_HEX_LEN && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Turns a client-supplied file name into a safe display name: the last path
/// component only (both `/` and `\` separate), no control characters, no
/// leading or trailing dots or spaces, no Windows device names, at most
/// [`MAX_FILE_NAME_LEN`] bytes (keeping the extension when cut), and never
/// empty. Names are display metadata only — nothing on a server disk is ever
/// named by them — but a client writes downloads under this name, so it must
/// be safe as a single path component everywhere.
pub fn sanitize_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let mut out = fit(trim(&cleaned), MAX_FILE_NAME_LEN);
    if out.is_empty() {
        out = "file".to_owned();
    }
    // The device check comes last, on the final name, and the prefix may
    // push it over the limit: cut again (the `_` stays first, so the result
    // is no device name and a second pass changes nothing).
    if is_device_name(&out) {
        out.insert(0, '_');
        out = fit(&out, MAX_FILE_NAME_LEN);
    }
    out
}

/// Without leading and trailing dots and white space.
fn trim(name: &str) -> &str {
    name.trim_matches(|c: char| c == '.' || c.is_whitespace())
}

/// `name` (already trimmed) cut to at most `max` bytes, keeping the
/// extension, and trimmed again because a cut can end on a dot or a space.
fn fit(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    trim(&truncate_keeping_extension(name, max)).to_owned()
}

/// Whether Windows reserves `name` for a device: `CON`, `PRN`, `AUX`, `NUL`,
/// `COM` or `LPT` followed by a digit or a superscript `¹`, `²`, `³`, with
/// any extension, in any case, with spaces before the extension.
fn is_device_name(name: &str) -> bool {
    let stem = name.split('.').next().unwrap_or("").trim_end().to_ascii_uppercase();
    if matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL") {
        return true;
    }
    let Some(n) = stem.strip_prefix("COM").or_else(|| stem.strip_prefix("LPT")) else {
        return false;
    };
    (n.len() == 1 && n.as_bytes()[0].is_ascii_digit()) || matches!(n, "¹" | "²" | "³")
}

fn truncate_keeping_extension(name: &str, max: usize) -> String {
    let ext = match name.rfind('.') {
        Some(i) if i > 0 && name.len() - i <= 16 => &name[i..],
        _ => "",
    };
    let mut cut = max - ext.len();
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{ext}", &name[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn hostile_names_become_single_safe_components() {
        assert_eq!(sanitize_file_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_file_name("/etc/shadow"), "shadow");
        assert_eq!(sanitize_file_name("C:\\Windows\\system.ini"), "system.ini");
        assert_eq!(sanitize_file_name("a\0b\nc.txt"), "a_b_c.txt");
        assert_eq!(sanitize_file_name(".."), "file");
        assert_eq!(sanitize_file_name(""), "file");
        assert_eq!(sanitize_file_name(" .hidden. "), "hidden");
        assert_eq!(sanitize_file_name("CON"), "_CON");
        assert_eq!(sanitize_file_name("lpt1.txt"), "_lpt1.txt");
        assert_eq!(sanitize_file_name("COM10"), "COM10");
        assert_eq!(sanitize_file_name("com0"), "_com0");
        assert_eq!(sanitize_file_name("COM¹.txt"), "_COM¹.txt");
        assert_eq!(sanitize_file_name("nul .tar.gz"), "_nul .tar.gz");
        assert_eq!(sanitize_file_name("résumé 日本.pdf"), "résumé 日本.pdf");
        let long = format!("{}.tar.gz", "é".repeat(3000));
        let s = sanitize_file_name(&long);
        assert!(s.len() <= MAX_FILE_NAME_LEN);
        assert!(s.ends_with(".gz"), "{s}");
    }

    /// Found by `cargo fuzz run file_name` (docs/RELIABILITY.md): a device
    /// name cut to 254 bytes got its `_` prefix, reaching 255, and a second
    /// pass cut it again, so sanitizing was not idempotent.
    #[test]
    fn fuzz_regression_device_name_at_the_length_limit() {
        let found = "lpt1.trésumé 日本xxx~xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxfxxxxxxxxxxxxxxxxxxxxxxxx\u{9}\u{0}\u{0}\u{0}xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\u{1}\u{0}\u{0}\u{0}sssda\u{0}b\u{a}cOréOsu日本xxxxx~xxxxxxxxxxtxxxxxx\u{0}\u{0}\u{0}{xxxxxxxxxxxxxxxxxxx";
        let plain = format!("CON.{}", "a".repeat(300));
        let spaced = format!("CON{}x", " ".repeat(300));
        for name in [found, plain.as_str(), spaced.as_str()] {
            let s = sanitize_file_name(name);
            assert!(s.len() <= MAX_FILE_NAME_LEN, "{} bytes", s.len());
            assert!(s.starts_with('_'), "{s}");
            assert_eq!(sanitize_file_name(&s), s, "idempotent");
        }
        assert_eq!(sanitize_file_name(&spaced), "_CON");
    }

    #[test]
    fn stream_codes_round_trip() {
        for n in 1..=10u64 {
            let c = StreamCode::from_code(n).expect("known");
            assert_eq!(u64::from(c.code()), n);
        }
        assert_eq!(StreamCode::from_code(0), None);
    }

    #[test]
    fn hashes() {
        assert!(valid_hash(&"a".repeat(64)));
        assert!(!valid_hash(&"A".repeat(64)));
        assert!(!valid_hash("abc"));
    }

    /// Names near the interesting edges: device stems, dots and spaces,
    /// separators, and lengths around [`MAX_FILE_NAME_LEN`].
    fn edgy_name() -> impl Strategy<Value = String> {
        let stem = prop_oneof![
            Just(""),
            Just("CON"),
            Just("nul"),
            Just("lpt1"),
            Just("COM¹"),
            Just("aux "),
            Just(".."),
            Just(" ."),
            Just("a/b\\"),
            Just("x"),
        ];
        let body = "[a. é日/\\\\:\u{0}\t]{0,8}";
        (stem, body, 0usize..300, prop::sample::select(vec!['a', ' ', '.', 'é']), "[a-z. ]{0,20}")
            .prop_map(|(stem, body, n, fill, tail)| {
                format!("{stem}{body}{}{tail}", fill.to_string().repeat(n))
            })
    }

    proptest! {
        #[test]
        fn edgy_names_are_safe_and_stable(name in edgy_name()) {
            let s = sanitize_file_name(&name);
            prop_assert!(!s.is_empty() && s.len() <= MAX_FILE_NAME_LEN);
            prop_assert!(!s.contains(['/', '\\', '\0']));
            prop_assert!(!s.starts_with(|c: char| c == '.' || c.is_whitespace()));
            prop_assert!(!s.ends_with(|c: char| c == '.' || c.is_whitespace()));
            prop_assert!(!is_device_name(&s), "{}", s);
            prop_assert_eq!(sanitize_file_name(&s), s.clone(), "idempotent");
        }

        /// Proptest twin of the `stream_header` fuzz target: headers as
        /// both sides write them read back the same; arbitrary header
        /// payloads never panic.
        #[test]
        fn stream_headers_round_trip(
            upload_id in "[0-9a-f]{32}|\\PC{0,40}",
            offset in any::<u64>(),
            size in any::<u64>(),
            junk in proptest::collection::vec(any::<u8>(), 0..256),
        ) {
            let up = UploadHeader { upload_id: upload_id.clone(), offset, trailer: offset % 2 == 0 };
            let bytes = serde_json::to_vec(&up).expect("serializes");
            prop_assert!(bytes.len() <= MAX_STREAM_HEADER_LEN);
            prop_assert_eq!(decode_stream_header::<UploadHeader>(&bytes).expect("parses"), up);
            let down = DownloadHeader {
                file_id: offset,
                name: upload_id,
                offset,
                size,
                hash: "ab".repeat(32),
            };
            let bytes = serde_json::to_vec(&down).expect("serializes");
            prop_assert_eq!(decode_stream_header::<DownloadHeader>(&bytes).expect("parses"), down);
            let _ = decode_stream_header::<UploadHeader>(&junk);
            let _ = decode_stream_header::<DownloadHeader>(&junk);
            if junk.len() >= 4 {
                let prefix = [junk[0], junk[1], junk[2], junk[3]];
                match stream_header_len(prefix) {
                    Ok(len) => prop_assert!(len <= MAX_STREAM_HEADER_LEN),
                    Err(HeaderError::TooLarge(len)) => prop_assert!(len > MAX_STREAM_HEADER_LEN),
                    Err(e) => prop_assert!(false, "unexpected {e}"),
                }
            }
        }

        #[test]
        fn sanitized_names_are_safe(name in any::<String>()) {
            let s = sanitize_file_name(&name);
            prop_assert!(!s.is_empty());
            prop_assert!(s.len() <= MAX_FILE_NAME_LEN);
            prop_assert!(!s.contains(['/', '\\', '\0']));
            prop_assert!(!s.chars().any(char::is_control));
            prop_assert!(s != "." && s != "..");
            prop_assert!(!s.starts_with('.'));
            prop_assert_eq!(sanitize_file_name(&s), s.clone(), "idempotent");
        }
    }
}
