//! File transfer beside the chat: every upload and every download runs in its
//! own task on its own unidirectional QUIC stream, reports progress through a
//! `watch` channel, and resumes after a reconnect.
//!
//! - [`upload`]: hash on the blocking pool, `upload.begin` (the server may
//!   already hold the content: then nothing is sent), stream from the offset
//!   the server holds, wait for `upload.done`; after a lost connection ask
//!   `upload.status` and continue from there.
//! - [`download`]: `file.get`, receive into `.<name>.qchat-part` in the target
//!   directory (hashing as it writes, [`part`]), verify BLAKE3, rename to a
//!   free name; after a lost connection
//!   ask again from the size of the partial file.
//!
//! [`progress`] holds what a transfer reports and its one handle
//! ([`TransferHandle`]: [`UploadHandle`], [`DownloadHandle`]); [`router`]
//! the [`Router`] that hands server-opened streams, `upload.*` events and
//! file messages to the task waiting for them. This module holds
//! [`TransferError`] and the file helpers both directions use. Tasks run on
//! the client's task tracker and stop when the client does (or when their
//! handle is cancelled).

mod chunks;
mod direct;
pub(crate) mod download;
mod part;
mod progress;
mod router;
pub(crate) mod upload;

pub use chunks::FileChunks;
pub use progress::{
    DownloadHandle, DownloadProgress, DownloadState, Downloaded, TransferHandle, TransferProgress,
    UploadHandle, UploadProgress, UploadState, Uploaded,
};
pub(crate) use router::{Incoming, PartClaim, Router, UploadOutcome, UploadWaiter};

use std::path::{Path, PathBuf};

use qchat_protocol::{ErrorBody, ErrorCode, StreamCode};
use tokio_util::sync::CancellationToken;

use crate::error::ClientError;

/// Why a transfer failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TransferError {
    /// The server refused: an `err` reply, an `upload.failed` event, or a
    /// stream stopped with a [`StreamCode`] (mapped to its error code).
    #[error("server refused: {0}")]
    Server(ErrorBody),
    /// The client could not talk to the server (closed, timed out, ...).
    #[error(transparent)]
    Client(ClientError),
    /// Reading or writing a local file failed.
    #[error("{context}: {message}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The operating system's explanation.
        message: String,
    },
    /// The downloaded bytes do not hash to the file's BLAKE3.
    #[error("content hash mismatch: expected {expected}, got {got}")]
    HashMismatch {
        /// The hash the server announced.
        expected: String,
        /// The hash of what arrived.
        got: String,
    },
    /// The server broke the file-stream rules.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Cancelled through the handle, or the client stopped.
    #[error("cancelled")]
    Cancelled,
}

impl TransferError {
    /// The server's error code, when the server refused.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server(body) => Some(body.code),
            Self::Client(e) => e.code(),
            _ => None,
        }
    }

    pub(crate) fn io(context: impl Into<String>, err: &std::io::Error) -> Self {
        Self::Io { context: context.into(), message: err.to_string() }
    }

    pub(crate) fn stream_code(code: u64) -> Self {
        match StreamCode::from_code(code) {
            Some(c) => Self::Server(ErrorBody::new(
                c.error_code(),
                format!("stream stopped by the server ({c:?})"),
            )),
            None => Self::Protocol(format!("stream stopped with unknown code {code}")),
        }
    }
}

impl From<ClientError> for TransferError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Server(body) => Self::Server(body),
            other => Self::Client(other),
        }
    }
}

/// `name`, or `stem (1).ext`, `stem (2).ext`, ... : the `n`th candidate for a
/// file name that must not replace an existing file.
pub(crate) fn numbered_name(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_owned();
    }
    match name.rfind('.') {
        Some(i) if i > 0 => format!("{} ({n}){}", &name[..i], &name[i..]),
        _ => format!("{name} ({n})"),
    }
}

/// Moves `part` to a free name in `dir` derived from `name`, never replacing
/// an existing file: a hard link fails atomically when the name is taken.
pub(crate) fn place_file(part: &Path, dir: &Path, name: &str) -> std::io::Result<PathBuf> {
    for n in 0..10_000 {
        let candidate = dir.join(numbered_name(name, n));
        match std::fs::hard_link(part, &candidate) {
            Ok(()) => {
                std::fs::remove_file(part)?;
                return Ok(candidate);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            // No hard links here (some file systems): check, then rename.
            Err(_) if !candidate.exists() => {
                std::fs::rename(part, &candidate)?;
                return Ok(candidate);
            }
            Err(_) => continue,
        }
    }
    Err(std::io::Error::other("no free file name"))
}

/// Bytes read and hashed at once by [`hash_file`]: large enough that
/// BLAKE3 spreads each piece over every core.
const HASH_CHUNK: usize = 4 * 1024 * 1024;

/// BLAKE3 over the first `len` bytes read from `file` (an upload's bytes
/// the server holds, a download's partial file); `short` is the error when
/// there are fewer. Blocking: call it on the blocking pool.
pub(crate) fn hash_prefix(
    file: impl std::io::Read,
    len: u64,
    short: &str,
) -> std::io::Result<blake3::Hasher> {
    let mut hasher = blake3::Hasher::new();
    if hasher.update_reader(file.take(len))?.count() != len {
        return Err(std::io::Error::other(short.to_owned()));
    }
    Ok(hasher)
}

/// BLAKE3 and length of the file at `path`, reporting bytes hashed to
/// `progress` and stopping when `cancel` fires. Runs on the calling thread
/// (and rayon's pool): call it on the blocking pool.
pub(crate) fn hash_file(
    path: &Path,
    progress: &dyn Fn(u64),
    cancel: &CancellationToken,
) -> Result<(String, u64), TransferError> {
    use std::io::Read as _;
    let context = || format!("reading {}", path.display());
    let mut file = std::fs::File::open(path).map_err(|e| TransferError::io(context(), &e))?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; HASH_CHUNK];
    let mut total = 0u64;
    loop {
        if cancel.is_cancelled() {
            return Err(TransferError::Cancelled);
        }
        let n = match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(TransferError::io(context(), &e)),
        };
        // Both cores: the upload cannot start before the hash is known
        // (the server must be able to refuse content it already holds).
        hasher.update_rayon(&buf[..n]);
        total += n as u64;
        progress(total);
    }
    Ok((hasher.finalize().to_hex().to_string(), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names_keep_the_extension() {
        assert_eq!(numbered_name("a.pdf", 0), "a.pdf");
        assert_eq!(numbered_name("a.pdf", 1), "a (1).pdf");
        assert_eq!(numbered_name("a.tar.gz", 2), "a.tar (2).gz");
        assert_eq!(numbered_name("README", 3), "README (3)");
    }

    #[test]
    fn placing_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("a.txt"), b"old").expect("write");
        let part = dir.path().join(".a.txt.qchat-part");
        std::fs::write(&part, b"new").expect("write");
        let placed = place_file(&part, dir.path(), "a.txt").expect("placed");
        assert_eq!(placed, dir.path().join("a (1).txt"));
        assert_eq!(std::fs::read(dir.path().join("a.txt")).expect("read"), b"old");
        assert_eq!(std::fs::read(&placed).expect("read"), b"new");
        assert!(!part.exists());
    }

    #[test]
    fn hashing_matches_blake3_and_reports_progress() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..(HASH_CHUNK * 2 + 7)).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).expect("write");
        let seen = std::sync::atomic::AtomicU64::new(0);
        let (hash, len) = hash_file(
            &path,
            &|n| seen.store(n, std::sync::atomic::Ordering::Relaxed),
            &CancellationToken::new(),
        )
        .expect("hashes");
        assert_eq!(hash, blake3::hash(&data).to_hex().to_string());
        assert_eq!(len, data.len() as u64);
        assert_eq!(seen.load(std::sync::atomic::Ordering::Relaxed), len);
    }
}
