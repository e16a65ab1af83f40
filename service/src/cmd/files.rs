//! `upload.begin`, `upload.status`, `file.get`.

use qchat_protocol::{
    DownloadHeader, ErrorCode, FileGetOk, FileGetReq, FileInfo, MAX_CLIENT_MSG_ID_LEN,
    UploadBeginReq, UploadStatusOk, UploadStatusReq, sanitize_file_name, valid_hash,
};
use serde_json::Value;

use super::{ok, room, who};
use crate::access::{self, FileVerdict, Need};
use crate::db::{self, Content};
use crate::error::{Error, Result, refuse};
use crate::state::{Login, Shared};
use crate::transfer::download::Downloads;
use crate::transfer::{self, Begin, TakenBy, valid_upload_id};

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
    let room = room(s, login, &r.room, Need::Post).await?.room;
    let begin = Begin { room, name, size: r.size, content, client_key: r.client_key.as_deref() };
    ok(&transfer::begin(s, login, begin).await?)
}

pub(super) async fn status(s: &Shared, login: &Login, r: UploadStatusReq) -> Result<Value> {
    let not_found = || refuse(ErrorCode::NotFound, "no such upload (finished, failed or expired)");
    if !valid_upload_id(&r.upload_id) {
        return Err(not_found());
    }
    let up = db::files::upload(&s.pool, login.tenant, login.user, &r.upload_id)
        .await?
        .ok_or_else(not_found)?;
    let offset = s.transfers.held_now(&up.id, TakenBy::Status).await.map_err(Error::store)?;
    ok(&UploadStatusOk { upload_id: up.id, offset, size: up.size })
}

pub(super) async fn get(
    s: &Shared,
    login: &Login,
    downloads: &mut Downloads,
    r: FileGetReq,
) -> Result<Value> {
    let file = match access::file(&s.pool, who(login), r.file_id).await? {
        FileVerdict::Readable(f) => f,
        FileVerdict::Forbidden => {
            return Err(refuse(ErrorCode::Forbidden, "join the room that offers this file first"));
        }
        FileVerdict::Hidden => return Err(refuse(ErrorCode::NotFound, "no such file")),
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
    let content = s.transfers.store.content().clone();
    // Refuse here rather than reset a stream the client cannot attribute.
    if !content.exists(login.tenant, &file.hash).await.unwrap_or(false) {
        tracing::error!(file = file.id, hash = %file.hash, "stored file missing");
        return Err(Error::Internal("stored file missing".into()));
    }
    let header = DownloadHeader {
        file_id: file.id,
        name: file.name.clone(),
        offset: r.offset,
        size: file.size,
        hash: file.hash.clone(),
    };
    let active = s.metrics.transfer();
    downloads.start(content, login.tenant, header, slot, active);
    ok(&FileGetOk {
        file: FileInfo { id: file.id, name: file.name, size: file.size, hash: file.hash },
        offset: r.offset,
    })
}
