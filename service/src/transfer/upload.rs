//! Receiving one file on a client-opened unidirectional stream: header frame,
//! then exactly `size - offset` bytes, then (for an upload begun hash-later)
//! the 32-byte BLAKE3 trailer. Hashes while writing to the partial file,
//! verifies size and BLAKE3 (against the declared hash or the trailer),
//! fsyncs, moves the file into the store and records file row and file
//! message in one transaction (via the committer).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use qchat_protocol::{
    Event, FileInfo, HEAD_LEN, MessageKind, StreamCode, TRAILER_LEN, UploadDone, UploadFailed,
    UploadHeader, decode_stream_header, encode_json, stream_header_len,
};
use quinn::{RecvStream, VarInt};
use tokio_util::sync::CancellationToken;

use crate::db::{self, FileAttach, NewMessage, Upload};
use crate::outbound::Outbound;
use crate::server::Shared;
use crate::session::Login;
use crate::transfer::writer::{Finished, HeadHasher, PartWriter};
use crate::transfer::{Claim, Reserve, valid_upload_id};

/// Largest chunk taken off the stream at once.
const CHUNK: usize = 256 * 1024;

/// Quota counted ahead of the bytes at once (see `receive_into`).
const GRANT: u64 = 1024 * 1024;
/// Reads between looks at the stop signals while bytes keep coming.
const STOP_CHECK_EVERY: u32 = 64;

/// Why the receive loop was told to stop.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// Another stream of the upload's owner takes it over.
    TakenOver,
    /// The connection's session ends.
    Closing,
}

impl Stop {
    /// Both keep what arrived for a resume.
    fn failure(self) -> Failure {
        match self {
            Self::TakenOver => {
                fail(StreamCode::Conflict, "taken over by a newer stream of the same upload", false)
            }
            Self::Closing => fail(StreamCode::Unavailable, "the connection is closing", false),
        }
    }
}

/// Why an upload stream failed.
struct Failure {
    code: StreamCode,
    message: String,
    /// Whether the partial bytes and the upload are dropped (a permanent
    /// failure) or kept for a resume.
    discard: bool,
}

fn fail(code: StreamCode, message: impl Into<String>, discard: bool) -> Failure {
    Failure { code, message: message.into(), discard }
}

fn internal(what: &str, e: impl std::fmt::Display) -> Failure {
    tracing::error!(cause = %e, "{what}");
    fail(StreamCode::Internal, "internal error", false)
}

/// Serves one upload stream to completion or failure. `closing` is
/// cancelled when the connection's session ends: the stream then stops at
/// its next read and writes out what it took before letting the upload go,
/// so a resume never meets a partial file that is still growing.
pub(crate) async fn receive(
    shared: Arc<Shared>,
    login: Option<Login>,
    out: Outbound,
    mut recv: RecvStream,
    closing: CancellationToken,
) {
    let _active = shared.metrics.transfer();
    let header = match read_header(&mut recv).await {
        Ok(h) => h,
        Err(f) => {
            let _ = recv.stop(VarInt::from_u32(f.code.code()));
            return;
        }
    };
    let id = header.upload_id.clone();
    // Held until a failed upload's bytes are discarded, so a stream taking
    // the upload over never meets them half gone.
    let mut claim = None;
    let result = match login {
        Some(login) => run(&shared, &login, header, &mut recv, &mut claim, &closing).await,
        None => Err(fail(StreamCode::NotFound, "log in before uploading", false)),
    };
    let event = match result {
        Ok(done) => Event::UploadDone(done),
        Err(f) => {
            tracing::info!(upload_id = %id, code = ?f.code, reason = %f.message, "upload failed");
            let _ = recv.stop(VarInt::from_u32(f.code.code()));
            if let Some(claim) = &mut claim {
                claim.release_in_flight();
            }
            if f.discard && valid_upload_id(&id) {
                shared.transfers.store.discard(&id).await;
                if let Err(e) = db::delete_upload(&shared.pool, &id).await {
                    tracing::error!(cause = %e, "deleting failed upload");
                }
            }
            drop(claim);
            Event::UploadFailed(UploadFailed {
                upload_id: id,
                code: f.code.error_code(),
                message: f.message,
            })
        }
    };
    match encode_json(&event) {
        Ok(frame) => {
            // The connection may be gone; the outcome is in history anyway.
            let _ = out.send(frame).await;
        }
        Err(e) => tracing::error!(cause = %e, "encoding upload event"),
    }
}

async fn read_header(recv: &mut RecvStream) -> Result<UploadHeader, Failure> {
    let bad = |m: &str| fail(StreamCode::BadHeader, m.to_owned(), false);
    let mut prefix = [0u8; 4];
    recv.read_exact(&mut prefix).await.map_err(|_| bad("missing header"))?;
    let len = stream_header_len(prefix).map_err(|e| bad(&e.to_string()))?;
    let mut buf = vec![0u8; len];
    recv.read_exact(&mut buf).await.map_err(|_| bad("truncated header"))?;
    decode_stream_header(&buf).map_err(|e| bad(&e.to_string()))
}

async fn run(
    shared: &Arc<Shared>,
    login: &Login,
    header: UploadHeader,
    recv: &mut RecvStream,
    slot: &mut Option<Claim>,
    closing: &CancellationToken,
) -> Result<UploadDone, Failure> {
    let transfers = &shared.transfers;
    if !valid_upload_id(&header.upload_id) {
        return Err(fail(StreamCode::NotFound, "no such upload", false));
    }
    let up = db::upload(&shared.pool, login.tenant, login.user, &header.upload_id)
        .await
        .map_err(|e| internal("loading upload", e))?
        .ok_or_else(|| fail(StreamCode::NotFound, "no such upload", false))?;
    if header.trailer != up.hash.is_none() {
        let why = if header.trailer {
            "this upload declared its hash: no trailer"
        } else {
            "this upload was begun with a head: its stream ends with the hash trailer"
        };
        return Err(fail(StreamCode::BadHeader, why, false));
    }
    // A stream of the same user takes the upload over from a stale one.
    let claim = slot.insert(transfers.claim(&up.id, login.tenant).await.ok_or_else(|| {
        fail(StreamCode::Conflict, "upload already in progress on another stream", false)
    })?);
    let held =
        transfers.store.held(&up.id).await.map_err(|e| internal("reading partial upload", e))?;
    if header.offset != held {
        return Err(fail(
            StreamCode::Conflict,
            format!("server holds {held} bytes; resume from there"),
            false,
        ));
    }
    db::touch_upload(&shared.pool, &up.id).await.map_err(|e| internal("touching upload", e))?;
    read_stored(shared, claim).await?;

    let started = Instant::now();
    let hashers = hash_held(transfers.store.part_path(&up.id), held, up.size.min(HEAD_LEN)).await?;
    let (written, trailer) =
        receive_bytes(shared, &up, held, claim, hashers, recv, closing).await?;
    let (hasher, synced) = (written.hasher, written.synced);
    let received = started.elapsed();
    let got = hasher.finalize().to_hex().to_string();
    let declared = match (&up.hash, trailer) {
        (Some(hash), _) => hash.clone(),
        (None, Some(digest)) => blake3::Hash::from_bytes(digest).to_hex().to_string(),
        (None, None) => return Err(internal("upload stream", "no hash and no trailer")),
    };
    if got != declared {
        return Err(fail(
            StreamCode::HashMismatch,
            format!("content hash {got} differs from the declared one"),
            true,
        ));
    }
    let hash = got;
    // What hash-later begins are matched by: complete with every byte in.
    let head = written
        .head
        .finish()
        .ok_or_else(|| internal("hashing upload head", "head incomplete"))?
        .to_hex()
        .to_string();
    transfers
        .store
        .promote(&up.id, login.tenant, &hash)
        .await
        .map_err(|e| internal("moving upload into the store", e))?;
    let msg = NewMessage {
        tenant: login.tenant,
        room: up.room,
        sender: Some(login.user),
        sender_name: up.user_name.clone(),
        client_msg_id: Some(format!("upload:{}", up.id)),
        kind: MessageKind::File,
        body: up.name.clone(),
        ts: db::now_ms(),
        file: Some(FileAttach {
            hash: hash.clone(),
            size: up.size,
            head: Some(head),
            upload_id: Some(up.id.clone()),
        }),
    };
    let committed = shared
        .committer
        .submit(msg, up.room_name.clone())
        .await
        .map_err(|e| internal("recording file message", e))?;
    if let Some(claim) = slot.take() {
        claim.stored(up.size);
    }
    tracing::info!(
        upload_id = %up.id,
        size = up.size,
        seq = committed.seq,
        receive_ms = (received - synced).as_millis(),
        fsync_ms = synced.as_millis(),
        direct = written.direct,
        waited_ms = written.waited.as_millis(),
        store_ms = (started.elapsed() - received).as_millis(),
        "upload stored"
    );
    Ok(UploadDone {
        upload_id: up.id,
        file: FileInfo {
            id: match committed.file_id {
                Some(id) => id,
                // Recorded before (the message was a duplicate): the file
                // row is there all the same.
                None => db::file_by_hash(&shared.pool, login.tenant, &hash)
                    .await
                    .map_err(|e| internal("reading file row", e))?
                    .map_or(0, |(id, _)| id),
            },
            name: up.name,
            size: up.size,
            hash,
        },
        seq: committed.seq,
    })
}

/// Hashes the `held` bytes already in the partial file (a resumed upload)
/// on the blocking pool, into a hasher for the whole file and one for its
/// head of `head_len` bytes, which go on with the bytes still to come.
async fn hash_held(
    path: std::path::PathBuf,
    held: u64,
    head_len: u64,
) -> Result<(blake3::Hasher, HeadHasher), Failure> {
    if held == 0 {
        return Ok((blake3::Hasher::new(), HeadHasher::new(head_len)));
    }
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut file = std::fs::File::open(&path)?.take(held);
        let mut hasher = blake3::Hasher::new();
        // The head's part of the held bytes, then the head hasher forks off.
        let in_head = held.min(head_len);
        hasher.update_reader((&mut file).take(in_head))?;
        let head = HeadHasher::continuing(hasher.clone(), head_len - in_head);
        hasher.update_reader(file)?;
        if hasher.count() != held {
            return Err(std::io::Error::other("partial file shorter than expected"));
        }
        Ok::<_, std::io::Error>((hasher, head))
    })
    .await
    .map_err(|e| internal("hashing task", e))?
    .map_err(|e| internal("hashing partial upload", e))
}

/// Reads the tenant's stored bytes into the claim (for its quota checks).
async fn read_stored(shared: &Shared, claim: &mut Claim) -> Result<(), Failure> {
    let mark = claim.stored_mark();
    let stored = db::tenant_usage(&shared.pool, claim.tenant())
        .await
        .map_err(|e| internal("reading usage", e))?;
    claim.set_stored(stored, mark);
    Ok(())
}

/// The trailer of a hash-later upload stream: the file's BLAKE3 digest.
type Trailer = [u8; TRAILER_LEN];

/// Receives the bytes after `held` into the partial file, hashing them on
/// into `hashers` (whole file, head), and fsyncs it; the hashers, the fsync
/// time and how the writes went, and the stream's trailer if the upload has
/// one.
async fn receive_bytes(
    shared: &Shared,
    up: &Upload,
    held: u64,
    claim: &mut Claim,
    hashers: (blake3::Hasher, HeadHasher),
    recv: &mut RecvStream,
    closing: &CancellationToken,
) -> Result<(Finished, Option<Trailer>), Failure> {
    let path = shared.transfers.store.part_path(&up.id);
    let mut writer = PartWriter::open(path, hashers, shared.transfers.write_budget.clone())
        .await
        .map_err(|e| internal("opening partial upload", e))?;
    match receive_into(up, held, claim, &mut writer, recv, closing).await {
        Ok(trailer) => match writer.finish().await {
            Ok(finished) => Ok((finished, trailer)),
            Err(e) => Err(internal("writing partial upload", e)),
        },
        Err(f) => {
            // Other uploads may use the quota at once; whatever arrived is
            // in the file before the claim is let go, so a resume (or the
            // stream taking over) sees every byte.
            claim.release_in_flight();
            if let Err(e) = writer.close().await {
                tracing::warn!(upload_id = %up.id, cause = %e, "writing partial upload");
            }
            Err(f)
        }
    }
}

/// The receive loop: bytes from the stream to the writer, within the
/// declared size and the tenant's quota; then a hash-later upload's trailer.
async fn receive_into(
    up: &Upload,
    held: u64,
    claim: &mut Claim,
    writer: &mut PartWriter,
    recv: &mut RecvStream,
    closing: &CancellationToken,
) -> Result<Option<Trailer>, Failure> {
    let mut total = held;
    // A hash-later upload's trailer, gathered once the file's bytes are in.
    let mut trailer = up.hash.is_none().then(|| Vec::with_capacity(TRAILER_LEN));
    // Quota counted ahead, up to `GRANT` at a time, so the tenant-wide
    // lock is taken once per grant rather than once per packet; never past
    // the declared size, and given back with the claim.
    let mut granted = 0u64;
    // One waiter for the whole loop, not one registered per packet.
    let stop = claim.stop_token();
    let stopped = async {
        tokio::select! {
            () = stop.cancelled() => Stop::TakenOver,
            () = closing.cancelled() => Stop::Closing,
        }
    };
    tokio::pin!(stopped);
    let mut reads = 0u32;
    loop {
        reads = reads.wrapping_add(1);
        // Reads come first below, so a stream that always has bytes ready
        // would never let the select see a stop: look every so often.
        if reads.is_multiple_of(STOP_CHECK_EVERY) && (stop.is_cancelled() || closing.is_cancelled())
        {
            let why = if stop.is_cancelled() { Stop::TakenOver } else { Stop::Closing };
            return Err(why.failure());
        }
        let read = tokio::select! {
            biased;
            r = recv.read_chunk(CHUNK, true) => r,
            why = &mut stopped => return Err(why.failure()),
        };
        let mut chunk: Bytes = match read {
            Ok(Some(c)) => c.bytes,
            Ok(None) => break,
            Err(e) => {
                // Connection lost or stream reset: keep what arrived for a resume.
                return Err(fail(
                    StreamCode::Unavailable,
                    format!("stream interrupted: {e}"),
                    false,
                ));
            }
        };
        if let Some(t) = &mut trailer
            && total + chunk.len() as u64 > up.size
        {
            // `total <= up.size` here: the rest of the chunk is trailer.
            let file_part = usize::try_from(up.size.saturating_sub(total)).unwrap_or(usize::MAX);
            let rest = chunk.split_off(file_part.min(chunk.len()));
            if t.len() + rest.len() > TRAILER_LEN {
                return Err(fail(
                    StreamCode::SizeMismatch,
                    format!("more than the declared {} bytes and the trailer", up.size),
                    true,
                ));
            }
            t.extend_from_slice(&rest);
            if chunk.is_empty() {
                continue;
            }
        }
        let n = chunk.len() as u64;
        if total + n > up.size {
            return Err(fail(
                StreamCode::SizeMismatch,
                format!("more than the declared {} bytes", up.size),
                true,
            ));
        }
        if n > granted {
            // `total + n <= up.size`, so this never reaches past the size.
            let want = (n - granted).max(GRANT.min(up.size - total - granted));
            if claim.reserve(want) == Reserve::OverQuota {
                return Err(fail(
                    StreamCode::QuotaExceeded,
                    "the tenant's storage quota is used up",
                    true,
                ));
            }
            granted += want;
        }
        granted -= n;
        writer.write(chunk).await.map_err(|e| internal("writing partial upload", e))?;
        total += n;
    }
    if total != up.size {
        return Err(fail(
            StreamCode::SizeMismatch,
            format!("stream ended at {total} of {} bytes", up.size),
            true,
        ));
    }
    match trailer {
        None => Ok(None),
        Some(t) => match Trailer::try_from(t.as_slice()) {
            Ok(digest) => Ok(Some(digest)),
            Err(_) => Err(fail(
                StreamCode::HashMismatch,
                format!("stream ended {} bytes into its {TRAILER_LEN}-byte trailer", t.len()),
                true,
            )),
        },
    }
}
