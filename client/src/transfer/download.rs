//! One download: `file.get` from the size of the partial file, receive the
//! server-opened stream into `.<name>.qchat-part`, verify BLAKE3, rename to
//! a free name. A lost connection asks again from what is on disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use qchat_protocol::{
    ErrorCode, FileGetOk, FileGetReq, FileInfo, Op, StreamCode, sanitize_file_name,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::debug;

use super::part::PartWriter;
use super::{
    DownloadProgress, DownloadState, Downloaded, Incoming, PartClaim, TransferError, place_file,
};
use crate::error::ClientError;
use crate::state::Shared;

/// Attempts before a download gives up.
const MAX_ATTEMPTS: u32 = 60;
/// How long the server may take to open the stream after its reply.
const STREAM_WAIT: Duration = Duration::from_secs(30);
/// Chunks (a packet's worth of stream data each) taken off the stream per
/// read.
const READ_CHUNKS: usize = 32;
/// Bytes received between progress updates.
const REPORT_EVERY: u64 = 1024 * 1024;

/// Everything one download task needs.
pub(crate) struct Job {
    pub(crate) shared: Arc<Shared>,
    pub(crate) file_id: u64,
    pub(crate) out_dir: PathBuf,
    pub(crate) progress: watch::Sender<DownloadProgress>,
    pub(crate) cancel: CancellationToken,
}

/// The partial file, once the name is known.
struct Part {
    info: FileInfo,
    name: String,
    path: PathBuf,
    _claim: PartClaim,
}

/// Runs the download to its end and publishes the final state.
pub(crate) async fn run(job: Job) {
    let result = tokio::select! {
        r = job.download() => r,
        () = job.cancel.cancelled() => Err(TransferError::Cancelled),
    };
    if let Err(e) = &result {
        debug!(file_id = job.file_id, cause = %e, "download failed");
    }
    job.progress.send_modify(|p| {
        p.state = match result {
            Ok(d) => DownloadState::Done(d),
            Err(e) => DownloadState::Failed(e),
        }
    });
}

impl Job {
    fn set(&self, f: impl FnOnce(&mut DownloadProgress)) {
        self.progress.send_modify(f);
    }

    async fn download(&self) -> Result<Downloaded, TransferError> {
        self.set(|p| p.state = DownloadState::Waiting);
        // Bounded like the server's downloads per connection (more would be
        // refused as rate_limited).
        let _slot = self
            .shared
            .download_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| TransferError::Cancelled)?;
        let mut part: Option<Part> = None;
        let mut offset = 0u64;
        // Whether bytes from before this call were reused (a mismatch then
        // earns one fresh start).
        let mut reused = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            if attempt > MAX_ATTEMPTS {
                return Err(TransferError::Protocol(format!(
                    "gave up after {MAX_ATTEMPTS} attempts"
                )));
            }
            if attempt > 1 {
                tokio::time::sleep(Duration::from_millis(100) * attempt.min(20)).await;
            }
            let conn = self.shared.ready_conn(None).await?;
            self.set(|p| p.state = DownloadState::Requesting);
            let mut waiter = self.shared.transfers.expect_download(self.file_id, offset);
            let op = Op::FileGet(FileGetReq { file_id: self.file_id, offset });
            let ok: FileGetOk = match conn.request(op).await {
                Ok(ok) => ok,
                Err(ClientError::Disconnected(_)) => continue,
                Err(ClientError::Server(b)) if b.code == ErrorCode::RateLimited => continue,
                Err(e) => return Err(e.into()),
            };
            if part.is_none() {
                let p = self.open_part(ok.file.clone())?;
                let held = file_len(&p.path).await?;
                part = Some(p);
                if held > 0 && held <= ok.file.size {
                    // A partial file from an earlier run: ask from there
                    // (the stream already coming is refused by the router).
                    // Progress starts at what is held, not at 0.
                    reused = true;
                    offset = held;
                    self.set(|p| p.done = held);
                    continue;
                }
            }
            let Some(p) = &part else { continue };
            let incoming = tokio::select! {
                r = &mut waiter.rx => match r {
                    Ok(incoming) => incoming,
                    Err(_) => continue,
                },
                _ = conn.closed() => continue,
                _ = tokio::time::sleep(STREAM_WAIT) => {
                    return Err(TransferError::Protocol("the server did not open the file stream".to_owned()));
                }
            };
            check_header(&incoming, &p.info)?;
            let got = match self.receive(incoming, &p.path, offset).await {
                Ok(hash) => hash.to_hex().to_string(),
                Err(Ok(held)) => {
                    offset = held;
                    continue;
                }
                Err(Err(e)) => return Err(e),
            };
            // Hashed as the bytes were written: nothing left to read back.
            self.set(|pr| pr.state = DownloadState::Verifying);
            if got != p.info.hash {
                let _ = tokio::fs::remove_file(&p.path).await;
                if reused {
                    // The leftover was not this file's prefix: start over once.
                    reused = false;
                    offset = 0;
                    continue;
                }
                return Err(TransferError::HashMismatch { expected: p.info.hash.clone(), got });
            }
            let (path, dir, name) = (p.path.clone(), self.out_dir.clone(), p.name.clone());
            let placed = tokio::task::spawn_blocking(move || place_file(&path, &dir, &name))
                .await
                .map_err(|e| TransferError::Protocol(format!("rename task: {e}")))?
                .map_err(|e| {
                    TransferError::io(
                        format!("moving the download into {}", self.out_dir.display()),
                        &e,
                    )
                })?;
            let received = self.progress.borrow().received;
            return Ok(Downloaded { file: p.info.clone(), path: placed, received });
        }
    }

    /// Claims `.<name>.qchat-part` for this download.
    fn open_part(&self, info: FileInfo) -> Result<Part, TransferError> {
        let name = sanitize_file_name(&info.name);
        let path = self.out_dir.join(format!(".{name}.qchat-part"));
        let claim = self.shared.transfers.claim_part(&path).ok_or_else(|| TransferError::Io {
            context: format!("writing {}", path.display()),
            message: "another download of this client is writing it".to_owned(),
        })?;
        self.set(|p| {
            p.name = name.clone();
            p.total = info.size;
        });
        Ok(Part { info, name, path, _claim: claim })
    }

    /// Writes the stream's bytes at `offset`; the BLAKE3 of the whole file
    /// once the stream has ended. `Err(Ok(held))` when the stream broke off
    /// and a retry should ask from `held`.
    async fn receive(
        &self,
        mut incoming: Incoming,
        path: &Path,
        offset: u64,
    ) -> Result<blake3::Hash, Result<u64, TransferError>> {
        let io =
            |e: std::io::Error| Err(TransferError::io(format!("writing {}", path.display()), &e));
        let mut part = PartWriter::open(path.to_owned(), offset).await.map_err(io)?;
        self.set(|p| {
            p.done = offset;
            p.state = DownloadState::Receiving;
        });
        let size = incoming.header.size;
        let mut at = offset;
        // Progress is published about once per MiB, not per packet.
        let mut reported = at;
        let report = |at: u64, reported: &mut u64| {
            let n = at - *reported;
            *reported = at;
            self.set(|p| {
                p.done = at;
                p.received += n;
            });
        };
        let mut chunks: [Bytes; READ_CHUNKS] = Default::default();
        loop {
            let count = match incoming.stream.read_chunks(&mut chunks).await {
                Ok(Some(count)) => count,
                Ok(None) => break,
                Err(e) => {
                    // Keep what arrived for the retry.
                    part.close().await.map_err(io)?;
                    report(at, &mut reported);
                    if let quinn::ReadError::Reset(code) = e
                        && StreamCode::from_code(code.into_inner()) == Some(StreamCode::Internal)
                    {
                        return Err(Err(TransferError::stream_code(code.into_inner())));
                    }
                    return Err(Ok(at));
                }
            };
            for slot in &mut chunks[..count] {
                let chunk = std::mem::take(slot);
                if at + chunk.len() as u64 > size {
                    let _ = incoming.stream.stop(StreamCode::SizeMismatch.code().into());
                    return Err(Err(TransferError::Protocol(
                        "more bytes than the file's size".to_owned(),
                    )));
                }
                part.write(&chunk).await.map_err(io)?;
                at += chunk.len() as u64;
            }
            if at - reported >= REPORT_EVERY {
                report(at, &mut reported);
            }
        }
        report(at, &mut reported);
        if at != size {
            // The bytes that came are the file's: keep them for a resume.
            part.close().await.map_err(io)?;
            return Err(Err(TransferError::Protocol(format!(
                "stream ended at {at} of {size} bytes"
            ))));
        }
        part.finish().await.map_err(io)
    }
}

/// The stream must carry the offer the reply described (its name is empty
/// from servers that predate it in headers).
fn check_header(incoming: &Incoming, info: &FileInfo) -> Result<(), TransferError> {
    let h = &incoming.header;
    let name_differs = !h.name.is_empty() && h.name != info.name;
    if h.size != info.size || h.hash != info.hash || h.offset > h.size || name_differs {
        return Err(TransferError::Protocol(format!(
            "stream header {h:?} does not match file {}",
            info.id
        )));
    }
    Ok(())
}

async fn file_len(path: &Path) -> Result<u64, TransferError> {
    match tokio::fs::metadata(path).await {
        Ok(m) => Ok(m.len()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(TransferError::io(format!("reading {}", path.display()), &e)),
    }
}
