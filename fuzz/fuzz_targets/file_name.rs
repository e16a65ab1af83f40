//! The file-name sanitizer (`sanitize_file_name`) on arbitrary UTF-8: the
//! result is always one safe path component — not empty, not `.` or `..`,
//! no separator, NUL or control character, no leading dot or space, no
//! trailing dot or space, no Windows device name, at most
//! `MAX_FILE_NAME_LEN` bytes — and sanitizing it again changes nothing.

#![no_main]

use libfuzzer_sys::fuzz_target;
use qchat_protocol::{MAX_FILE_NAME_LEN, sanitize_file_name};

fuzz_target!(|data: &[u8]| {
    let Ok(name) = std::str::from_utf8(data) else { return };
    let s = sanitize_file_name(name);
    assert!(!s.is_empty());
    assert!(s.len() <= MAX_FILE_NAME_LEN, "{} bytes", s.len());
    assert!(s != "." && s != "..");
    assert!(!s.contains(['/', '\\', '\0']), "{s:?}");
    assert!(!s.chars().any(char::is_control), "{s:?}");
    assert!(!s.chars().any(|c| matches!(c, ':' | '*' | '?' | '"' | '<' | '>' | '|')), "{s:?}");
    assert!(!s.starts_with(|c: char| c == '.' || c.is_whitespace()), "{s:?}");
    assert!(!s.ends_with(|c: char| c == '.' || c.is_whitespace()), "{s:?}");
    let stem = s.split('.').next().unwrap_or("").trim_end().to_ascii_uppercase();
    let port = stem.strip_prefix("COM").or_else(|| stem.strip_prefix("LPT"));
    let device = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || port.is_some_and(|n| {
            matches!(n, "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9" | "¹" | "²" | "³")
        });
    assert!(!device, "{s:?} is a device name");
    assert_eq!(sanitize_file_name(&s), s, "not idempotent");
});
