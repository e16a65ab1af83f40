//! One upload: `upload.begin`, one stream per attempt from the offset the
//! server holds, then wait for the server's verdict. A lost connection or a
//! stream the server stopped as `unavailable`/`conflict` is retried from
//! `upload.status`; every other refusal is final.
//!
//! The begin is hash-later (PROTOCOL.md §9.2): it names the file by its size
//! and the BLAKE3 of its first MiB, so a new file is read once, hashed as
//! its bytes go out, and its digest ends the stream. Only when the server
//! says the tenant may hold the content already (`hash_required`) is the
//! whole file hashed first and begun again by its hash, so content already
//! stored is never sent.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use qchat_protocol::{
    ErrorCode, HEAD_LEN, Op, StreamCode, UploadBeginOk, UploadBeginReq, UploadHeader,
    UploadStatusOk, UploadStatusReq, encode_json,
};
use std::io::Seek as _;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::{
    FileChunks, TransferError, UploadOutcome, UploadProgress, UploadState, UploadWaiter, Uploaded,
    hash_file, hash_prefix,
};
use crate::connection::Connection;
use crate::error::ClientError;
use crate::state::Shared;

/// Attempts (streams and status checks) before an upload gives up.
const MAX_ATTEMPTS: u32 = 60;
/// How long to wait for the `upload.failed` event explaining a stopped stream.
const EXPLAIN_WAIT: Duration = Duration::from_secs(5);
/// Longest pause between attempts.
const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Shortest wait for a refusal after a resumed stream's header.
const PROBE_MIN: Duration = Duration::from_millis(50);

/// Everything one upload task needs.
pub(crate) struct Job {
    pub(crate) shared: Arc<Shared>,
    pub(crate) room: String,
    pub(crate) path: PathBuf,
    pub(crate) name: String,
    pub(crate) progress: watch::Sender<UploadProgress>,
    pub(crate) cancel: CancellationToken,
}

/// How one stream attempt ended without success.
enum StreamEnd {
    /// The server stopped the stream with this code.
    Stopped(u64),
    /// The connection went away.
    Lost,
}

/// Runs the upload to its end and publishes the final state.
pub(crate) async fn run(job: Job) {
    let result = tokio::select! {
        r = job.upload() => r,
        () = job.cancel.cancelled() => Err(TransferError::Cancelled),
    };
    if let Err(e) = &result {
        debug!(name = %job.name, cause = %e, "upload failed");
    }
    job.progress.send_modify(|p| {
        p.state = match result {
            Ok(u) => UploadState::Done(u),
            Err(e) => UploadState::Failed(e),
        }
    });
}

impl Job {
    fn set(&self, f: impl FnOnce(&mut UploadProgress)) {
        self.progress.send_modify(f);
    }

    async fn upload(&self) -> Result<Uploaded, TransferError> {
        let size = self.size().await?;
        // One key per share: a begin repeated after a lost reply (the call
        // retries on a new connection) is recognised and posts nothing twice.
        let key = crate::outbox::new_client_msg_id();
        let head = self.head(size).await?;
        let mut begin = self.begin(size, None, Some(head), &key).await?;
        // Whether the stream ends with the digest (the begin was hash-later).
        let mut trailer = true;
        if begin.hash_required {
            let (hash, hashed) = self.hash().await?;
            if hashed != size {
                return Err(self.changed());
            }
            begin = self.begin(size, Some(hash), None, &key).await?;
            trailer = false;
        }
        self.set(|p| {
            p.total = size;
            p.done = 0;
            p.state = UploadState::Waiting;
        });
        if begin.complete {
            let (Some(file), Some(seq)) = (begin.file, begin.seq) else {
                return Err(TransferError::Protocol("complete upload without file".to_owned()));
            };
            self.set(|p| p.done = size);
            return Ok(Uploaded { file, seq, sent: 0, resumed_from: size, deduplicated: true });
        }
        let id = begin.upload_id;
        let mut waiter = self.shared.transfers.watch_upload(&id);
        let mut offset = begin.offset;
        let mut attempt = 0u32;
        loop {
            let conn = self.shared.ready_conn(None).await?;
            let resumed_from = offset;
            let send = Send { id: &id, offset, size, probe: attempt > 0, trailer };
            let end = match self.send_once(&conn, send).await {
                Ok(()) => {
                    self.set(|p| p.state = UploadState::Verifying);
                    tokio::select! {
                        outcome = waiter.rx.recv() => match outcome {
                            Some(UploadOutcome::Done { file, seq }) => {
                                return Ok(self.finished(file, seq, resumed_from));
                            }
                            Some(UploadOutcome::Failed(body)) if !retryable(body.code) => {
                                return Err(TransferError::Server(body));
                            }
                            Some(UploadOutcome::Failed(_)) => StreamEnd::Lost,
                            None => return Err(TransferError::Cancelled),
                        },
                        _ = conn.closed() => StreamEnd::Lost,
                    }
                }
                Err(Err(e)) => return Err(e),
                Err(Ok(end)) => end,
            };
            if let StreamEnd::Stopped(code) = end {
                self.explain_stop(&mut waiter, code).await?;
            }
            // The upload may have finished while the connection was down;
            // the file message arrives with the sync after the reconnect.
            while let Ok(outcome) = waiter.rx.try_recv() {
                match outcome {
                    UploadOutcome::Done { file, seq } => {
                        return Ok(self.finished(file, seq, resumed_from));
                    }
                    UploadOutcome::Failed(body) if !retryable(body.code) => {
                        return Err(TransferError::Server(body));
                    }
                    UploadOutcome::Failed(_) => {}
                }
            }
            attempt += 1;
            if attempt > MAX_ATTEMPTS {
                return Err(TransferError::Protocol(format!(
                    "gave up after {MAX_ATTEMPTS} attempts"
                )));
            }
            self.set(|p| p.state = UploadState::Waiting);
            tokio::time::sleep(backoff(attempt)).await;
            offset = match self.status(&id, &mut waiter, resumed_from).await? {
                Ok(held) => held,
                Err(done) => return Ok(done),
            };
            debug!(upload_id = %id, offset, attempt, "resuming upload");
        }
    }

    fn finished(&self, file: qchat_protocol::FileInfo, seq: u64, resumed_from: u64) -> Uploaded {
        let sent = self.progress.borrow().sent;
        self.set(|p| p.done = p.total);
        Uploaded { file, seq, sent, resumed_from, deduplicated: false }
    }

    /// Sends `upload.begin` with the file's `hash` or, hash-later, its `head`.
    async fn begin(
        &self,
        size: u64,
        hash: Option<String>,
        head: Option<String>,
        key: &str,
    ) -> Result<UploadBeginOk, TransferError> {
        let op = Op::UploadBegin(UploadBeginReq {
            room: self.room.clone(),
            name: self.name.clone(),
            size,
            hash,
            head,
            client_key: Some(key.to_owned()),
        });
        Ok(self.shared.call(op, true).await?)
    }

    /// The size of the file, which must be a regular file.
    async fn size(&self) -> Result<u64, TransferError> {
        let meta = tokio::fs::metadata(&self.path).await.map_err(|e| self.io(&e))?;
        if !meta.is_file() {
            return Err(TransferError::Io {
                context: self.context(),
                message: "not a regular file".to_owned(),
            });
        }
        self.set(|p| p.total = meta.len());
        Ok(meta.len())
    }

    /// BLAKE3 of the first [`HEAD_LEN`] bytes (all of a shorter file).
    async fn head(&self, size: u64) -> Result<String, TransferError> {
        let want = size.min(HEAD_LEN);
        let hasher = hash_range(self.path.clone(), want).await.map_err(|e| self.io(&e))?;
        Ok(hasher.finalize().to_hex().to_string())
    }

    fn context(&self) -> String {
        format!("reading {}", self.path.display())
    }

    fn io(&self, e: &std::io::Error) -> TransferError {
        TransferError::io(self.context(), e)
    }

    fn changed(&self) -> TransferError {
        TransferError::Io {
            context: self.context(),
            message: "the file changed size while uploading".to_owned(),
        }
    }

    /// BLAKE3 and size of the whole file (on the blocking pool and both
    /// cores), before a begin by hash.
    async fn hash(&self) -> Result<(String, u64), TransferError> {
        let path = self.path.clone();
        self.set(|p| p.state = UploadState::Hashing);
        let progress = self.progress.clone();
        let cancel = self.cancel.clone();
        tokio::task::spawn_blocking(move || {
            hash_file(&path, &|n| progress.send_modify(|p| p.done = n), &cancel)
        })
        .await
        .map_err(|e| TransferError::Protocol(format!("hashing task: {e}")))?
    }

    /// Asks how many bytes the server holds. `Err(done)` when the upload
    /// turned out to be finished already.
    async fn status(
        &self,
        id: &str,
        waiter: &mut UploadWaiter,
        resumed_from: u64,
    ) -> Result<Result<u64, Uploaded>, TransferError> {
        let op = Op::UploadStatus(UploadStatusReq { upload_id: id.to_owned() });
        match self.shared.call::<UploadStatusOk>(op, true).await {
            Ok(s) => Ok(Ok(s.offset)),
            Err(ClientError::Server(body)) if body.code == ErrorCode::NotFound => {
                // Finished (its row is gone) or failed: the event or the file
                // message says which.
                match tokio::time::timeout(EXPLAIN_WAIT, waiter.rx.recv()).await {
                    Ok(Some(UploadOutcome::Done { file, seq })) => {
                        Ok(Err(self.finished(file, seq, resumed_from)))
                    }
                    Ok(Some(UploadOutcome::Failed(body))) => Err(TransferError::Server(body)),
                    _ => Err(TransferError::Server(body)),
                }
            }
            Err(e) => Err(e.into()),
        }
    }

    /// After the server stopped a stream: fails with the server's reason
    /// unless the code allows a retry.
    async fn explain_stop(
        &self,
        waiter: &mut UploadWaiter,
        code: u64,
    ) -> Result<(), TransferError> {
        let retry = matches!(
            StreamCode::from_code(code),
            Some(StreamCode::Conflict | StreamCode::Unavailable)
        );
        if retry {
            return Ok(());
        }
        // The matching upload.failed event carries a readable message.
        if let Ok(Some(UploadOutcome::Failed(body))) =
            tokio::time::timeout(EXPLAIN_WAIT, waiter.rx.recv()).await
        {
            return Err(TransferError::Server(body));
        }
        Err(TransferError::stream_code(code))
    }

    /// Sends the bytes from `offset` on a new stream (hash-later: hashing
    /// them and ending with the digest) and finishes it.
    /// `Err(Ok(_))` for an end worth retrying, `Err(Err(_))` for a final one.
    async fn send_once(
        &self,
        conn: &Connection,
        send: Send<'_>,
    ) -> Result<(), Result<StreamEnd, TransferError>> {
        let Send { id, offset, size, probe, trailer } = send;
        let path = self.path.clone();
        let file = tokio::task::spawn_blocking(move || {
            let mut file = std::fs::File::open(path)?;
            file.seek(std::io::SeekFrom::Start(offset))?;
            Ok::<_, std::io::Error>(file)
        })
        .await
        .map_err(|e| Err(TransferError::Protocol(format!("reading task: {e}"))))?
        .map_err(|e| Err(self.io(&e)))?;
        // The digest covers the whole file: a resumed stream hashes the
        // bytes the server holds again first (read from the file here).
        let hasher = if trailer {
            Some(hash_range(self.path.clone(), offset).await.map_err(|e| Err(self.io(&e)))?)
        } else {
            None
        };
        let stream = conn.open_uni().await.map_err(|_| Ok(StreamEnd::Lost))?;
        let mut stream = ResetOnDrop { stream, finished: false };
        let header = encode_json(&UploadHeader { upload_id: id.to_owned(), offset, trailer })
            .map_err(|e| Err(TransferError::Protocol(format!("encoding header: {e}"))))?;
        stream.stream.write_all(&header).await.map_err(write_end)?;
        if probe {
            // A resume often meets the server still holding the upload for
            // the lost connection (until its idle timeout) and is refused
            // with `conflict` right after the header: wait a few round trips
            // for that verdict rather than pour a window of bytes into a
            // doomed stream.
            let wait = (conn.rtt() * 3).max(PROBE_MIN);
            tokio::select! {
                stopped = stream.stream.stopped() => match stopped {
                    Ok(Some(code)) => return Err(Ok(StreamEnd::Stopped(code.into_inner()))),
                    _ => return Err(Ok(StreamEnd::Lost)),
                },
                _ = tokio::time::sleep(wait) => {}
            }
        }
        self.set(|p| {
            p.done = offset;
            p.state = UploadState::Sending;
        });
        let mut chunks = FileChunks::new(file, hasher);
        let sent = self.send_chunks(&mut chunks, &mut stream.stream, size - offset.min(size)).await;
        if let Err(end) = sent {
            // A read started ahead cannot be cut off: let it end (one chunk
            // at most) rather than outlive the stream with the file open.
            chunks.close().await;
            return Err(end);
        }
        if let Some(hasher) = chunks.into_hasher().await {
            stream.stream.write_all(hasher.finalize().as_bytes()).await.map_err(write_end)?;
        }
        stream.finish().map_err(|_| Ok(StreamEnd::Lost))
    }

    /// Sends the `remaining` bytes of `chunks` on `stream`.
    async fn send_chunks(
        &self,
        chunks: &mut FileChunks,
        stream: &mut quinn::SendStream,
        mut remaining: u64,
    ) -> Result<(), Result<StreamEnd, TransferError>> {
        let chunk_at = |left: u64| usize::try_from(left).unwrap_or(SEND_CHUNK).min(SEND_CHUNK);
        while remaining > 0 {
            let want = chunk_at(remaining);
            // The chunk after this one is read (and hashed) while this one
            // waits for credit and goes out.
            let ahead = chunk_at(remaining - want as u64);
            let chunk = chunks.next_ahead(want, ahead).await.map_err(|e| Err(self.io(&e)))?;
            if chunk.len() < want {
                // The end of the file came before the size it had at the begin.
                return Err(Err(self.changed()));
            }
            let n = chunk.len() as u64;
            // The chunk itself goes into quinn's send buffer: no copy.
            stream.write_chunk(chunk).await.map_err(write_end)?;
            remaining -= n;
            self.set(|p| {
                p.done += n;
                p.sent += n;
            });
        }
        Ok(())
    }
}

/// One stream attempt of [`Job::send_once`].
#[derive(Debug, Clone, Copy)]
struct Send<'a> {
    id: &'a str,
    /// Where the bytes start: what the server holds.
    offset: u64,
    size: u64,
    /// Whether to wait briefly for a refusal after the header (a resume).
    probe: bool,
    /// Whether the stream ends with the digest (hash-later).
    trailer: bool,
}

/// BLAKE3 over the first `len` bytes of the file at `path`, on the blocking
/// pool.
async fn hash_range(path: PathBuf, len: u64) -> std::io::Result<blake3::Hasher> {
    tokio::task::spawn_blocking(move || {
        if len == 0 {
            return Ok(blake3::Hasher::new());
        }
        hash_prefix(std::fs::File::open(path)?, len, "the file shrank while uploading")
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Bytes read from the file and handed to the stream at once.
const SEND_CHUNK: usize = 1024 * 1024;

/// Codes after which the upload is tried again from `upload.status`.
fn retryable(code: ErrorCode) -> bool {
    matches!(code, ErrorCode::Unavailable | ErrorCode::Conflict)
}

fn backoff(attempt: u32) -> Duration {
    (Duration::from_millis(100) * attempt.min(20)).min(BACKOFF_MAX)
}

fn write_end(e: quinn::WriteError) -> Result<StreamEnd, TransferError> {
    match e {
        quinn::WriteError::Stopped(code) => Ok(StreamEnd::Stopped(code.into_inner())),
        _ => Ok(StreamEnd::Lost),
    }
}

/// A send stream that is reset (not finished) when dropped unfinished, so a
/// cancelled upload is never mistaken for a complete one: the server keeps
/// the bytes for a resume instead of rejecting a short upload.
struct ResetOnDrop {
    stream: quinn::SendStream,
    finished: bool,
}

impl ResetOnDrop {
    fn finish(&mut self) -> Result<(), quinn::ClosedStream> {
        self.finished = true;
        self.stream.finish()
    }
}

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        if !self.finished {
            let _ = self.stream.reset(StreamCode::Cancelled.code().into());
        }
    }
}
