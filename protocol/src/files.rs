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

/// A stored file, as carried by file messages and replies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// File id within the tenant; use it with `file.get`.
    pub id: u64,
    /// Display name (sanitized; never a path).
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
}

/// First frame of a download stream (server → client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownloadHeader {
    /// The file.
    pub file_id: u64,
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
    /// The content's BLAKE3 differs from the declared hash.
    HashMismatch = 5,
    /// The tenant's storage quota would be exceeded.
    QuotaExceeded = 6,
    /// The server is shutting down; resume later.
    Unavailable = 7,
    /// A server-side fault.
    Internal = 8,
    /// The receiver no longer wants the data (download cancelled).
    Cancelled = 9,
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
    // Cut first (one byte spare for the device-name prefix), then trim, so a
    // second pass changes nothing.
    let cut = if cleaned.len() > MAX_FILE_NAME_LEN - 1 {
        truncate_keeping_extension(&cleaned, MAX_FILE_NAME_LEN - 1)
    } else {
        cleaned
    };
    let trimmed = cut.trim_matches(|c: char| c == '.' || c.is_whitespace());
    let mut out = if trimmed.is_empty() { "file".to_owned() } else { trimmed.to_owned() };
    let stem = out.split('.').next().unwrap_or("").trim_end().to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        out.insert(0, '_');
    }
    out
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
        assert_eq!(sanitize_file_name("résumé 日本.pdf"), "résumé 日本.pdf");
        let long = format!("{}.tar.gz", "é".repeat(3000));
        let s = sanitize_file_name(&long);
        assert!(s.len() <= MAX_FILE_NAME_LEN);
        assert!(s.ends_with(".gz"), "{s}");
    }

    #[test]
    fn stream_codes_round_trip() {
        for n in 1..=9u64 {
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

    proptest! {
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
