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
//! This module holds the public handles ([`UploadHandle`], [`DownloadHandle`]),
//! their progress types, [`TransferError`], and the [`Router`] that hands
//! server-opened streams, `upload.*` events and file messages to the task
//! waiting for them. Tasks run on the client's task tracker and stop when the
//! client does (or when their handle is cancelled).

mod chunks;
pub(crate) mod download;
mod part;
pub(crate) mod upload;

pub use chunks::FileChunks;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qchat_protocol::{
    DownloadHeader, ErrorBody, ErrorCode, Event, FileInfo, Message, MessageKind, StreamCode,
};
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::debug;

use crate::error::ClientError;
use crate::supervisor::lock;

/// How long a server-opened stream may take to deliver its header frame.
const HEADER_WAIT: Duration = Duration::from_secs(10);

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

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq)]
pub enum UploadState {
    /// Reading the start of the file for `upload.begin`, or, when the
    /// server says the tenant may hold the content already, computing the
    /// whole file's BLAKE3 first (`done` counts bytes hashed).
    Hashing,
    /// Waiting for the connection (reconnecting) or a stream.
    Waiting,
    /// Sending bytes (`done` counts bytes the server holds or has in flight).
    Sending,
    /// Every byte is sent; the server is verifying and storing the file.
    Verifying,
    /// Stored and offered to the room.
    Done(Uploaded),
    /// Given up.
    Failed(TransferError),
}

/// A finished upload.
#[derive(Debug, Clone, PartialEq)]
pub struct Uploaded {
    /// The stored file (use its `id` with [`crate::Client::download`]).
    pub file: FileInfo,
    /// Seq of the file message in the room.
    pub seq: u64,
    /// File bytes written to upload streams, over every attempt (0 when the
    /// server already held the content).
    pub sent: u64,
    /// Offset the last stream started from (above 0 after a resume).
    pub resumed_from: u64,
    /// The tenant already stored this content; no bytes were sent.
    pub deduplicated: bool,
}

/// A snapshot of one upload.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadProgress {
    /// Display name sent to the server (it may sanitize it further).
    pub name: String,
    /// Room the file is offered to.
    pub room: String,
    /// File size in bytes (0 until known).
    pub total: u64,
    /// Bytes hashed while [`UploadState::Hashing`], else bytes of the file
    /// accounted for: held by the server plus sent on the current stream.
    pub done: u64,
    /// File bytes written to upload streams so far, over every attempt.
    pub sent: u64,
    /// The state.
    pub state: UploadState,
}

impl UploadProgress {
    /// Whether the upload ended (done or failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, UploadState::Done(_) | UploadState::Failed(_))
    }
}

/// Where a download stands.
#[derive(Debug, Clone, PartialEq)]
pub enum DownloadState {
    /// Asking the server (`file.get`) and waiting for its stream.
    Requesting,
    /// Waiting for the connection (reconnecting) or a download slot.
    Waiting,
    /// Receiving bytes.
    Receiving,
    /// Hashing the received file.
    Verifying,
    /// Verified and renamed into place.
    Done(Downloaded),
    /// Given up; the partial file is kept for a later resume unless it was
    /// found corrupt.
    Failed(TransferError),
}

/// A finished download.
#[derive(Debug, Clone, PartialEq)]
pub struct Downloaded {
    /// The file as the server describes it.
    pub file: FileInfo,
    /// Where it was written.
    pub path: PathBuf,
    /// Bytes received over the network, over every attempt.
    pub received: u64,
}

/// A snapshot of one download.
#[derive(Debug, Clone, PartialEq)]
pub struct DownloadProgress {
    /// The file (offer) id asked for.
    pub file_id: u64,
    /// The offer's display name (sanitized), empty until the server's first
    /// reply.
    pub name: String,
    /// File size (0 until known).
    pub total: u64,
    /// Bytes of the file on disk so far.
    pub done: u64,
    /// Bytes received over the network, over every attempt.
    pub received: u64,
    /// The state.
    pub state: DownloadState,
}

impl DownloadProgress {
    /// Whether the download ended (done or failed).
    pub fn is_finished(&self) -> bool {
        matches!(self.state, DownloadState::Done(_) | DownloadState::Failed(_))
    }
}

/// Handle to an upload started with [`crate::Client::upload`]. Clones watch
/// the same upload; dropping them does not stop it (use [`Self::cancel`]).
#[derive(Debug, Clone)]
pub struct UploadHandle {
    progress: watch::Receiver<UploadProgress>,
    cancel: CancellationToken,
}

impl UploadHandle {
    /// A receiver of progress snapshots (`changed()` wakes on every update).
    pub fn progress(&self) -> watch::Receiver<UploadProgress> {
        self.progress.clone()
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> UploadProgress {
        self.progress.borrow().clone()
    }

    /// Stops the upload; the server keeps the bytes it has for a later
    /// `upload.begin` of the same file to resume.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits until the upload ends.
    ///
    /// # Errors
    /// Why it failed; [`TransferError::Cancelled`] when cancelled or when the
    /// client stopped.
    pub async fn wait(&self) -> Result<Uploaded, TransferError> {
        let mut rx = self.progress.clone();
        let state = match rx.wait_for(UploadProgress::is_finished).await {
            Ok(p) => p.state.clone(),
            Err(_) => return Err(TransferError::Cancelled),
        };
        match state {
            UploadState::Done(u) => Ok(u),
            UploadState::Failed(e) => Err(e),
            _ => Err(TransferError::Cancelled),
        }
    }
}

/// Handle to a download started with [`crate::Client::download`]. Clones
/// watch the same download; dropping them does not stop it.
#[derive(Debug, Clone)]
pub struct DownloadHandle {
    progress: watch::Receiver<DownloadProgress>,
    cancel: CancellationToken,
}

impl DownloadHandle {
    /// A receiver of progress snapshots.
    pub fn progress(&self) -> watch::Receiver<DownloadProgress> {
        self.progress.clone()
    }

    /// The latest snapshot.
    pub fn snapshot(&self) -> DownloadProgress {
        self.progress.borrow().clone()
    }

    /// Stops the download; the partial file stays for a later resume.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits until the download ends.
    ///
    /// # Errors
    /// Why it failed; [`TransferError::Cancelled`] when cancelled or when the
    /// client stopped.
    pub async fn wait(&self) -> Result<Downloaded, TransferError> {
        let mut rx = self.progress.clone();
        let state = match rx.wait_for(DownloadProgress::is_finished).await {
            Ok(p) => p.state.clone(),
            Err(_) => return Err(TransferError::Cancelled),
        };
        match state {
            DownloadState::Done(d) => Ok(d),
            DownloadState::Failed(e) => Err(e),
            _ => Err(TransferError::Cancelled),
        }
    }
}

pub(crate) fn upload_handle(
    progress: watch::Receiver<UploadProgress>,
    cancel: CancellationToken,
) -> UploadHandle {
    UploadHandle { progress, cancel }
}

pub(crate) fn download_handle(
    progress: watch::Receiver<DownloadProgress>,
    cancel: CancellationToken,
) -> DownloadHandle {
    DownloadHandle { progress, cancel }
}

/// What the server said about an upload, from its event or its file message.
#[derive(Debug, Clone)]
pub(crate) enum UploadOutcome {
    /// Stored: the file and its message's seq.
    Done { file: FileInfo, seq: u64 },
    /// `upload.failed`.
    Failed(ErrorBody),
}

/// A server-opened stream with its header already read.
pub(crate) struct Incoming {
    pub(crate) header: DownloadHeader,
    pub(crate) stream: quinn::RecvStream,
}

/// Routes what arrives for transfers to the task waiting for it. Cheap to
/// clone; entries are removed by the guards the waiting tasks hold.
#[derive(Clone, Default)]
pub(crate) struct Router {
    inner: Arc<Mutex<RouterInner>>,
}

/// Downloads waiting for a stream, by `(file_id, offset)`, oldest first,
/// each with the token its guard removes it by.
type DownloadWaiters = HashMap<(u64, u64), Vec<(u64, oneshot::Sender<Incoming>)>>;

#[derive(Default)]
struct RouterInner {
    next_token: u64,
    uploads: HashMap<String, mpsc::Sender<UploadOutcome>>,
    downloads: DownloadWaiters,
    parts: HashSet<PathBuf>,
}

/// Receives the outcomes of one upload; unregisters on drop.
pub(crate) struct UploadWaiter {
    router: Router,
    upload_id: String,
    pub(crate) rx: mpsc::Receiver<UploadOutcome>,
}

impl Drop for UploadWaiter {
    fn drop(&mut self) {
        lock(&self.router.inner).uploads.remove(&self.upload_id);
    }
}

/// Receives the stream for one `file.get`; unregisters on drop.
pub(crate) struct DownloadWaiter {
    router: Router,
    key: (u64, u64),
    token: u64,
    pub(crate) rx: oneshot::Receiver<Incoming>,
}

impl Drop for DownloadWaiter {
    fn drop(&mut self) {
        let mut inner = lock(&self.router.inner);
        if let Some(list) = inner.downloads.get_mut(&self.key) {
            list.retain(|(t, _)| *t != self.token);
            if list.is_empty() {
                inner.downloads.remove(&self.key);
            }
        }
    }
}

/// A partial-download path in use by one download of this client.
pub(crate) struct PartClaim {
    router: Router,
    path: PathBuf,
}

impl Drop for PartClaim {
    fn drop(&mut self) {
        lock(&self.router.inner).parts.remove(&self.path);
    }
}

impl Router {
    /// Starts listening for the outcome of `upload_id`.
    pub(crate) fn watch_upload(&self, upload_id: &str) -> UploadWaiter {
        let (tx, rx) = mpsc::channel(8);
        lock(&self.inner).uploads.insert(upload_id.to_owned(), tx);
        UploadWaiter { router: self.clone(), upload_id: upload_id.to_owned(), rx }
    }

    /// Registers interest in the stream `file.get(file_id, offset)` will open.
    pub(crate) fn expect_download(&self, file_id: u64, offset: u64) -> DownloadWaiter {
        let (tx, rx) = oneshot::channel();
        let mut inner = lock(&self.inner);
        inner.next_token += 1;
        let token = inner.next_token;
        inner.downloads.entry((file_id, offset)).or_default().push((token, tx));
        DownloadWaiter { router: self.clone(), key: (file_id, offset), token, rx }
    }

    /// Claims a partial-download path; `None` when another download of this
    /// client writes it.
    pub(crate) fn claim_part(&self, path: &Path) -> Option<PartClaim> {
        let mut inner = lock(&self.inner);
        inner
            .parts
            .insert(path.to_path_buf())
            .then(|| PartClaim { router: self.clone(), path: path.to_path_buf() })
    }

    /// Hands an `upload.done` / `upload.failed` event to its upload. Returns
    /// the event back when it is not one of those.
    pub(crate) fn upload_event(&self, ev: Event) -> Option<Event> {
        let (id, outcome) = match ev {
            Event::UploadDone(d) => (d.upload_id, UploadOutcome::Done { file: d.file, seq: d.seq }),
            Event::UploadFailed(f) => {
                (f.upload_id, UploadOutcome::Failed(ErrorBody::new(f.code, f.message)))
            }
            other => return Some(other),
        };
        self.notify_upload(&id, outcome);
        None
    }

    /// A file message whose `client_msg_id` is `upload:<id>` also completes
    /// that upload: it is how an upload that finished while the connection
    /// was down learns so (the message comes with the sync after reconnect).
    pub(crate) fn file_message(&self, msg: &Message) {
        if msg.kind != MessageKind::File {
            return;
        }
        let (Some(id), Some(file)) =
            (msg.client_msg_id.as_deref().and_then(|c| c.strip_prefix("upload:")), &msg.file)
        else {
            return;
        };
        self.notify_upload(id, UploadOutcome::Done { file: file.clone(), seq: msg.seq });
    }

    fn notify_upload(&self, id: &str, outcome: UploadOutcome) {
        let tx = lock(&self.inner).uploads.get(id).cloned();
        match tx {
            // A full queue only holds duplicates of outcomes already queued.
            Some(tx) => drop(tx.try_send(outcome)),
            None => debug!(upload_id = id, "upload outcome for no upload in flight"),
        }
    }

    /// Reads the header of a server-opened stream and hands the stream to the
    /// download waiting for it; a stream nobody waits for is stopped.
    pub(crate) async fn route(self, mut stream: quinn::RecvStream) {
        let header = match tokio::time::timeout(HEADER_WAIT, read_header(&mut stream)).await {
            Ok(Ok(h)) => h,
            Ok(Err(why)) => {
                debug!(%why, "bad download stream header");
                let _ = stream.stop(StreamCode::BadHeader.code().into());
                return;
            }
            Err(_) => {
                let _ = stream.stop(StreamCode::BadHeader.code().into());
                return;
            }
        };
        let key = (header.file_id, header.offset);
        let mut incoming = Incoming { header, stream };
        loop {
            let waiter = {
                let mut inner = lock(&self.inner);
                let next = inner
                    .downloads
                    .get_mut(&key)
                    .and_then(|l| if l.is_empty() { None } else { Some(l.remove(0).1) });
                if inner.downloads.get(&key).is_some_and(Vec::is_empty) {
                    inner.downloads.remove(&key);
                }
                next
            };
            let Some(tx) = waiter else {
                debug!(file_id = key.0, offset = key.1, "download stream nobody waits for");
                let _ = incoming.stream.stop(StreamCode::Cancelled.code().into());
                return;
            };
            match tx.send(incoming) {
                Ok(()) => return,
                // That download gave up meanwhile; try the next one.
                Err(back) => incoming = back,
            }
        }
    }
}

async fn read_header(stream: &mut quinn::RecvStream) -> Result<DownloadHeader, String> {
    let mut prefix = [0u8; 4];
    stream.read_exact(&mut prefix).await.map_err(|e| e.to_string())?;
    let len = qchat_protocol::stream_header_len(prefix).map_err(|e| e.to_string())?;
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
    qchat_protocol::decode_stream_header(&buf).map_err(|e| e.to_string())
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

    #[test]
    fn file_messages_complete_their_upload() {
        let router = Router::default();
        let mut waiter = router.watch_upload("abc");
        let file = FileInfo { id: 3, name: "x".into(), size: 1, hash: "00".repeat(32) };
        let msg = Message {
            room: "r".into(),
            seq: 9,
            sender: "ann".into(),
            ts: 0,
            kind: MessageKind::File,
            body: "x".into(),
            client_msg_id: Some("upload:abc".into()),
            file: Some(file.clone()),
        };
        router.file_message(&msg);
        assert!(matches!(
            waiter.rx.try_recv(),
            Ok(UploadOutcome::Done { seq: 9, file: f }) if f == file
        ));
        drop(waiter);
        assert!(lock(&router.inner).uploads.is_empty());
    }
}
