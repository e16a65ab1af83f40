//! `upload.begin`, `upload.status`, `file.get`.

use qchat_protocol::{
    DownloadHeader, ErrorCode, FileGetOk, FileGetReq, FileInfo, MAX_CLIENT_MSG_ID_LEN, MessageKind,
    UploadBeginOk, UploadBeginReq, UploadStatusOk, UploadStatusReq, sanitize_file_name, valid_hash,
};
use serde_json::Value;

use super::{member_room, ok};
use crate::db::{self, Content, FileAccess, FileAttach, NewMessage, NewUpload};
use crate::error::{Result, refuse};
use crate::state::{Login, Shared};
use crate::transfer::download::Downloads;
use crate::transfer::{keyed_upload_id, new_upload_id, valid_upload_id};

pub(super) async fn begin(s: &Shared, login: &Login, r: UploadBeginReq) -> Result<Value> {
    let content = match (r.hash.as_deref(), r.head.as_deref()) {
        (Some(hash), None) if valid_hash(hash) => Content::Hash(hash),
        (None, Some(head)) if valid_hash(head) => Content::Head(head),
        (Some(_), None) | (None, Some(_)) => {
            return Err(refuse(
                ErrorCode::BadRequest,
                "hash and head must be 64 lower-case hex digits (BLAKE3)",
            ));
        }
        _ => return Err(refuse(ErrorCode::BadRequest, "give either hash or head")),
    };
    let limits = s.transfers.limits;
    if r.size > limits.max_file_size {
        return Err(refuse(
            ErrorCode::TooLarge,
            format!("files are limited to {} bytes", limits.max_file_size),
        ));
    }
    if let Some(key) = &r.client_key
        && (key.is_empty() || key.len() > MAX_CLIENT_MSG_ID_LEN)
    {
        return Err(refuse(
            ErrorCode::BadRequest,
            format!("client_key must be 1 to {MAX_CLIENT_MSG_ID_LEN} bytes"),
        ));
    }
    let name = sanitize_file_name(&r.name);
    let (room, _) = member_room(s, login, &r.room).await?;
    let pool = &s.pool;
    // A keyed begin names its share: repeating it finds the same upload id,
    // and through it the same upload or file message.
    let keyed = r
        .client_key
        .as_deref()
        .map(|k| keyed_upload_id(login.tenant, login.user, room.id, k, content, r.size));
    // A keyed begin's own unfinished upload, if this is a repeat of it.
    let own = match &keyed {
        Some(id) => db::upload(pool, login.tenant, login.user, id).await?.map(|u| u.id),
        None => None,
    };

    match content {
        // Content the tenant already stores is not sent again.
        Content::Hash(hash) => {
            if let Some(stored) = db::file_by_hash(pool, login.tenant, hash).await? {
                let share = Share { room, name, size: r.size, keyed };
                return offer_stored(s, login, share, hash, stored).await;
            }
        }
        Content::Head(head) => {
            // A keyed repeat finds the file its upload stored, or the upload
            // itself (`own`), before any look at what else the tenant stores.
            if let Some(id) = &keyed {
                let cmid = format!("upload:{id}");
                let shared =
                    db::shared_file(pool, login.tenant, room.id, login.user, &cmid).await?;
                if let Some((hash, stored)) = shared {
                    let share = Share { room, name, size: r.size, keyed };
                    return offer_stored(s, login, share, &hash, stored).await;
                }
            }
            // It might be stored: the client must say which content it is first.
            if own.is_none() && db::tenant_may_hold(pool, login.tenant, r.size, head).await? {
                return ok(&UploadBeginOk { hash_required: true, ..pending(String::new(), 0) });
            }
        }
    }
    if db::tenant_usage(pool, login.tenant).await?.saturating_add(r.size) > limits.tenant_quota {
        return Err(refuse(
            ErrorCode::QuotaExceeded,
            "the tenant's storage quota would be exceeded",
        ));
    }
    // Resume: the same share again (keyed), or, without a key, the same
    // content (or, hash later, the same size and head) to the same room.
    let resume = match &keyed {
        Some(_) => own,
        None => db::find_upload(pool, login.tenant, login.user, room.id, content, r.size).await?,
    };
    if let Some(upload_id) = resume {
        let offset = held_now(s, &upload_id).await?;
        return ok(&pending(upload_id, offset));
    }
    let upload_id = keyed.unwrap_or_else(new_upload_id);
    let row = NewUpload {
        id: &upload_id,
        tenant: login.tenant,
        user: login.user,
        room: room.id,
        name: &name,
        size: r.size,
        content,
    };
    db::create_upload(pool, &row).await?;
    ok(&pending(upload_id, 0))
}

/// The reply for an upload to send from `offset`.
fn pending(upload_id: String, offset: u64) -> UploadBeginOk {
    UploadBeginOk {
        upload_id,
        offset,
        complete: false,
        file: None,
        seq: None,
        hash_required: false,
    }
}

/// What an `upload.begin` offers: to which room, under which name.
struct Share {
    room: db::Room,
    /// Sanitized display name.
    name: String,
    size: u64,
    /// The upload id the client key names, if the begin has one.
    keyed: Option<String>,
}

/// Offers content the tenant already stores (`stored`: its file id and
/// size) as a new file message: nothing is sent.
async fn offer_stored(
    s: &Shared,
    login: &Login,
    share: Share,
    hash: &str,
    stored: (u64, u64),
) -> Result<Value> {
    let Share { room, name, size, keyed } = share;
    let (file_id, stored_size) = stored;
    if stored_size != size {
        return Err(refuse(ErrorCode::BadRequest, "a stored file has this hash with another size"));
    }
    // Keyed: a repeat (or the upload that stored this share) already
    // recorded the message under this id, and the committer returns it.
    let upload_id = keyed.unwrap_or_else(new_upload_id);
    let msg = NewMessage {
        tenant: login.tenant,
        room: room.id,
        sender: Some(login.user),
        sender_name: login.user_name.clone(),
        client_msg_id: Some(format!("upload:{upload_id}")),
        kind: MessageKind::File,
        body: name.clone(),
        ts: db::now_ms(),
        file: Some(FileAttach { hash: hash.to_owned(), size, head: None, upload_id: None }),
    };
    let c = s.committer.submit(msg, room.name).await?;
    ok(&UploadBeginOk {
        upload_id,
        offset: size,
        complete: true,
        file: Some(FileInfo {
            id: c.file_id.unwrap_or(file_id),
            name,
            size,
            hash: hash.to_owned(),
        }),
        seq: Some(c.seq),
        hash_required: false,
    })
}

pub(super) async fn status(s: &Shared, login: &Login, r: UploadStatusReq) -> Result<Value> {
    let not_found = || refuse(ErrorCode::NotFound, "no such upload (finished, failed or expired)");
    if !valid_upload_id(&r.upload_id) {
        return Err(not_found());
    }
    let up =
        db::upload(&s.pool, login.tenant, login.user, &r.upload_id).await?.ok_or_else(not_found)?;
    let offset = held_now(s, &up.id).await?;
    ok(&UploadStatusOk { upload_id: up.id, offset, size: up.size })
}

pub(super) async fn get(
    s: &Shared,
    login: &Login,
    downloads: &mut Downloads,
    r: FileGetReq,
) -> Result<Value> {
    let file = match db::file_access(&s.pool, login.tenant, login.user, r.file_id).await? {
        FileAccess::Visible(f) => f,
        FileAccess::NotMember => {
            return Err(refuse(ErrorCode::Forbidden, "join a room that offers this file first"));
        }
        FileAccess::Missing => return Err(refuse(ErrorCode::NotFound, "no such file")),
    };
    if r.offset > file.size {
        return Err(refuse(
            ErrorCode::BadRequest,
            format!("offset beyond the file's {} bytes", file.size),
        ));
    }
    let slot = downloads.slot().ok_or_else(|| {
        refuse(ErrorCode::RateLimited, "too many downloads in flight on this connection")
    })?;
    let path = s.transfers.store.file_path(login.tenant, &file.hash);
    // Refuse here rather than reset a stream the client cannot attribute.
    if tokio::fs::metadata(&path).await.is_err() {
        tracing::error!(path = %path.display(), "stored file missing");
        return Err(crate::error::Error::Internal("stored file missing".into()));
    }
    let header = DownloadHeader {
        file_id: file.id,
        offset: r.offset,
        size: file.size,
        hash: file.hash.clone(),
    };
    let active = s.metrics.transfer();
    downloads.start(path, header, slot, active);
    ok(&FileGetOk {
        file: FileInfo { id: file.id, name: file.name, size: file.size, hash: file.hash },
        offset: r.offset,
    })
}

/// The bytes held for one of the caller's uploads, after taking it over from
/// any stream still holding it (in practice one from a connection that died
/// without the server noticing yet), so the answer is final and the caller's
/// next stream is not refused as a conflict.
async fn held_now(s: &Shared, upload_id: &str) -> Result<u64> {
    let transfers = &s.transfers;
    if !transfers.take_over(upload_id).await {
        tracing::warn!(upload_id, "the stream holding an upload did not let go in time");
    }
    transfers.store.held(upload_id).await.map_err(io_err)
}

fn io_err(e: std::io::Error) -> crate::error::Error {
    crate::error::Error::Internal(format!("file store: {e}"))
}
