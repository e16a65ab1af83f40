//! The known-hosts file: one `ADDR:PORT HEX` line per pinned server, like
//! SSH's. Blank lines and lines starting with `#` are ignored; so are lines
//! that do not parse (they are kept in the file, never rewritten).

use std::io::Write;
use std::path::Path;

use crate::error::ClientError;

/// Parses the file's text into `(server, fingerprint)` pairs, in file order.
pub(crate) fn parse(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let server = parts.next()?;
            let fp = parts.next()?;
            is_fingerprint(fp).then_some((server, fp))
        })
        .collect()
}

/// The fingerprints pinned for `server` in the file at `path` (none when the
/// file does not exist).
///
/// # Errors
/// [`ClientError::Io`] when the file exists but cannot be read.
pub(crate) fn pinned(path: &Path, server: &str) -> Result<Vec<String>, ClientError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ClientError::io(format!("reading {}", path.display()), &e)),
    };
    Ok(parse(&text)
        .into_iter()
        .filter(|(s, _)| *s == server)
        .map(|(_, fp)| fp.to_ascii_lowercase())
        .collect())
}

/// Appends `server fingerprint` to the file, creating it (mode 0600 on unix)
/// and its parent directories as needed.
///
/// # Errors
/// [`ClientError::Io`] when the directory or file cannot be written.
pub(crate) fn append(path: &Path, server: &str, fingerprint: &str) -> Result<(), ClientError> {
    let ctx = || format!("writing {}", path.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ClientError::io(ctx(), &e))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(path).map_err(|e| ClientError::io(ctx(), &e))?;
    // Start on a fresh line even if someone left the last one unterminated.
    let needs_newline =
        std::fs::read(path).map(|bytes| bytes.last().is_some_and(|b| *b != b'\n')).unwrap_or(false);
    let line = format!("{}{server} {fingerprint}\n", if needs_newline { "\n" } else { "" });
    file.write_all(line.as_bytes()).map_err(|e| ClientError::io(ctx(), &e))?;
    file.sync_all().map_err(|e| ClientError::io(ctx(), &e))
}

/// Makes `fingerprint` the only pin of `server`: the file is rewritten
/// without the server's other pins (comments, other servers and lines that
/// do not parse stay as they are), then the new pin appended. The rewrite
/// goes through a temporary file renamed over the old one.
///
/// # Errors
/// [`ClientError::Config`] for a malformed fingerprint, [`ClientError::Io`]
/// when the file cannot be read or written.
#[cfg_attr(not(feature = "tui"), allow(dead_code))]
pub(crate) fn replace(path: &Path, server: &str, fingerprint: &str) -> Result<(), ClientError> {
    if !is_fingerprint(fingerprint) {
        return Err(ClientError::Config(format!(
            "fingerprint must be 64 hex digits, got {fingerprint:?}"
        )));
    }
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(ClientError::io(format!("reading {}", path.display()), &e)),
    };
    let kept: String = text
        .lines()
        .filter(|l| parse(l).first().is_none_or(|(s, _)| *s != server))
        .map(|l| format!("{l}\n"))
        .collect();
    let tmp = path.with_extension("tmp");
    let ctx = || format!("writing {}", tmp.display());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| ClientError::io(ctx(), &e))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut file = opts.open(&tmp).map_err(|e| ClientError::io(ctx(), &e))?;
    let line = format!("{kept}{server} {}\n", fingerprint.to_ascii_lowercase());
    file.write_all(line.as_bytes()).map_err(|e| ClientError::io(ctx(), &e))?;
    file.sync_all().map_err(|e| ClientError::io(ctx(), &e))?;
    std::fs::rename(&tmp, path)
        .map_err(|e| ClientError::io(format!("writing {}", path.display()), &e))?;
    tracing::info!(%server, %fingerprint, "replaced the pinned server certificate");
    Ok(())
}

/// Whether `s` looks like a SHA-256 fingerprint: 64 hex digits.
pub(crate) fn is_fingerprint(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aa00000000000000000000000000000000000000000000000000000000000000";
    const B: &str = "bb00000000000000000000000000000000000000000000000000000000000000";

    #[test]
    fn parse_skips_comments_blanks_and_garbage() {
        let text = format!("# pins\n\nhost:1 {A}\nbroken-line\nhost:2 nothex\n  other:3 {B}  \n");
        assert_eq!(parse(&text), vec![("host:1", A), ("other:3", B)]);
    }

    #[test]
    fn append_creates_dirs_and_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/deeper/known_hosts");
        assert_eq!(pinned(&path, "h:1").expect("missing is fine"), Vec::<String>::new());
        append(&path, "h:1", A).expect("append");
        append(&path, "h:2", B).expect("append");
        assert_eq!(pinned(&path, "h:1").expect("read"), vec![A.to_owned()]);
        assert_eq!(pinned(&path, "h:2").expect("read"), vec![B.to_owned()]);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, format!("h:1 {A}\nh:2 {B}\n"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn append_after_unterminated_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, format!("h:1 {A}")).expect("write");
        append(&path, "h:2", B).expect("append");
        assert_eq!(pinned(&path, "h:2").expect("read"), vec![B.to_owned()]);
        assert_eq!(pinned(&path, "h:1").expect("read"), vec![A.to_owned()]);
    }

    #[test]
    fn replace_drops_the_servers_old_pins_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("known_hosts");
        std::fs::write(&path, format!("# mine\nh:1 {A}\nh:2 {A}\nbroken\nh:1 {B}")).expect("write");
        replace(&path, "h:1", &B.to_ascii_uppercase()).expect("replace");
        assert_eq!(pinned(&path, "h:1").expect("read"), vec![B.to_owned()]);
        assert_eq!(pinned(&path, "h:2").expect("read"), vec![A.to_owned()]);
        let text = std::fs::read_to_string(&path).expect("read");
        assert_eq!(text, format!("# mine\nh:2 {A}\nbroken\nh:1 {B}\n"));
        assert!(replace(&path, "h:1", "nothex").is_err());
        let fresh = dir.path().join("new/known_hosts");
        replace(&fresh, "h:3", A).expect("creates the file");
        assert_eq!(pinned(&fresh, "h:3").expect("read"), vec![A.to_owned()]);
    }

    #[test]
    fn fingerprint_shape() {
        assert!(is_fingerprint(A));
        assert!(!is_fingerprint(&A[1..]));
        assert!(!is_fingerprint(&"g".repeat(64)));
    }
}
