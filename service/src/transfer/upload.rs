//! Receiving one file on a client-opened unidirectional stream: header frame,
//! then exactly `size - offset` bytes, then (for an upload begun hash-later)
//! the 32-byte BLAKE3 trailer. Hashes while writing to the partial file,
//! verifies size and BLAKE3 (against the declared hash or the trailer),
//! fsyncs, moves the file into the store and records file row and file
//! message in one transaction (via the committer). The receive loop and its
//! checks on each chunk (size, quota, trailer) are in [`intake`].

use std::sync::Arc;
use std::time::Instant;

use qchat_protocol::{
    ErrorCode, Event, FileInfo, HEAD_LEN, MessageKind, StreamCode, UploadDone, UploadFailed,
    UploadHeader, decode_stream_header, encode_json, stream_header_len,
};
use quinn::{RecvStream, VarInt};
use tokio_util::sync::CancellationToken;

use crate::access::{self, Caller, Need, Verdict};
use crate::db::{self, FileAttach, NewMessage};
use crate::outbound::Outbound;
use crate::state::{Login, Shared};
use crate::transfer::writer::HeadHasher;
use crate::transfer::{Claim, valid_upload_id};

mod intake;

use intake::receive_bytes;

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
    // Before log-in there is no upload to name, and events go only to
    // logged-in connections (PROTOCOL.md section 5): the stream code alone.
    let Some(login) = login else {
        let _ = recv.stop(VarInt::from_u32(StreamCode::NotFound.code()));
        return;
    };
    let id = header.upload_id.clone();
    // Held until a failed upload's bytes are discarded, so a stream taking
    // the upload over never meets them half gone.
    let mut claim = None;
    let result = run(&shared, &login, header, &mut recv, &mut claim, &closing).await;
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
                if let Err(e) = db::files::delete_upload(&shared.pool, &id).await {
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
    let up = db::files::upload(&shared.pool, login.tenant, login.user, &header.upload_id)
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
    // Claimed: a change that cancels the upload from here on stops this
    // stream. One that came before is seen now (the row is gone, or the
    // uploader may not post there any more).
    let caller = Caller { tenant: login.tenant, user: login.user, name: &login.user_name };
    let verdict = access::decide_in(&shared.pool, caller, up.room, Need::Post)
        .await
        .map_err(|e| internal("checking the upload's room", e))?;
    if verdict != Verdict::Allowed {
        return Err(fail(
            StreamCode::Forbidden,
            "you may no longer post in the upload's room",
            true,
        ));
    }
    let held =
        transfers.store.held(&up.id).await.map_err(|e| internal("reading partial upload", e))?;
    if header.offset != held {
        return Err(fail(
            StreamCode::Conflict,
            format!("server holds {held} bytes; resume from there"),
            false,
        ));
    }
    let touched = db::files::touch_upload(&shared.pool, &up.id)
        .await
        .map_err(|e| internal("touching upload", e))?;
    if !touched {
        return Err(fail(StreamCode::NotFound, "no such upload", false));
    }
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
    // Held until the file's row is committed: content no room offers is
    // only removed from the store under this lock (room deletion), after a
    // look at the rows.
    let content = transfers.store.lock_content(login.tenant, &hash).await;
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
        change: None,
        reply_to: None,
        mentions: None,
    };
    let committed = match shared.committer.submit(msg, up.room_label.clone()).await {
        Ok(c) => c,
        Err(e) => {
            // Refused at the commit (banned meanwhile, the room gone): the
            // content just promoted goes unless another offer has it.
            content.remove_if_unreferenced(&shared.pool).await;
            return Err(match e.to_body().code {
                ErrorCode::Forbidden | ErrorCode::NotFound => {
                    fail(StreamCode::Forbidden, "you may no longer post in the upload's room", true)
                }
                _ => internal("recording file message", e),
            });
        }
    };
    drop(content);
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
            // A file message always has an offer, a duplicate's included.
            id: committed
                .offer
                .ok_or_else(|| internal("recording file message", "no offer recorded"))?,
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
    let stored = db::files::usage(&shared.pool, claim.tenant())
        .await
        .map_err(|e| internal("reading usage", e))?;
    claim.set_stored(stored, mark);
    Ok(())
}
