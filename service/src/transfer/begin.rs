//! What `upload.begin` decides once the request is checked and the caller
//! is known to be a member of the room: dedupe (content the tenant already
//! stores, in a room the caller reads, is offered again, not sent), a keyed
//! repeat (the same share
//! finds its upload or its file message), the tenant's quota, resume (an
//! unfinished upload of the same share or content goes on from the bytes
//! held) and otherwise a new upload row.

use qchat_protocol::{ErrorCode, FileInfo, MessageKind, UploadBeginOk};

use crate::access::{self, Caller};
use crate::db::{self, Content, FileAttach, NewMessage, NewUpload, Room};
use crate::error::{Error, Result, refuse};
use crate::state::{Login, Shared};
use crate::transfer::{TakenBy, keyed_upload_id, new_upload_id};

/// A checked `upload.begin`.
pub(crate) struct Begin<'a> {
    /// The room offered to; the caller is a member.
    pub(crate) room: Room,
    /// Sanitized display name.
    pub(crate) name: String,
    /// Declared size, within the file size limit.
    pub(crate) size: u64,
    /// What the content is known by: its hash, or (hash later) its head.
    pub(crate) content: Content<'a>,
    /// The client's key for this share, if it gave one.
    pub(crate) client_key: Option<&'a str>,
}

/// Decides an `upload.begin`: an offer of stored content (complete), a
/// request to begin by hash (`hash_required`), or the upload to send and
/// the offset to send from.
///
/// # Errors
/// `quota_exceeded` when the upload would not fit the tenant's quota,
/// `bad_request` when a stored file has the hash with another size, and
/// database, store and commit faults.
pub(crate) async fn begin(s: &Shared, login: &Login, b: Begin<'_>) -> Result<UploadBeginOk> {
    let Begin { room, name, size, content, client_key } = b;
    let pool = &s.pool;
    // A keyed begin names its share: repeating it finds the same upload id,
    // and through it the same upload or file message.
    let keyed =
        client_key.map(|k| keyed_upload_id(login.tenant, login.user, room.id, k, content, size));
    // A keyed begin's own unfinished upload, if this is a repeat of it.
    let own = match &keyed {
        Some(id) => db::files::upload(pool, login.tenant, login.user, id).await?.map(|u| u.id),
        None => None,
    };

    let caller = Caller { tenant: login.tenant, user: login.user, name: &login.user_name };
    match content {
        // Content the tenant stores is not sent again — when the caller may
        // read it already (a room the caller reads offers it). Anything
        // else would tell the caller that content exists where they cannot
        // look, and hand it over by its hash alone.
        Content::Hash(hash) => {
            // Held to the commit, so the content cannot be removed meanwhile
            // (a room deleted with the last offer of it).
            let lock = s.transfers.store.lock_content(login.tenant, hash).await;
            if let Some(stored) = db::files::by_hash(pool, login.tenant, hash).await?
                && access::content_readable(pool, caller, stored.0).await?
            {
                let share = Share { room, name, size, keyed };
                let offered = offer_stored(s, login, share, hash, stored).await;
                drop(lock);
                return offered;
            }
        }
        Content::Head(head) => {
            // A keyed repeat finds the file its upload stored, or the upload
            // itself (`own`), before any look at what else the tenant stores.
            if let Some(id) = &keyed {
                let cmid = format!("upload:{id}");
                let shared =
                    db::files::shared(pool, login.tenant, room.id, login.user, &cmid).await?;
                if let Some((hash, stored)) = shared {
                    let lock = s.transfers.store.lock_content(login.tenant, &hash).await;
                    let share = Share { room, name, size, keyed };
                    let offered = offer_stored(s, login, share, &hash, stored).await;
                    drop(lock);
                    return offered;
                }
            }
            // It might be stored: the client must say which content it is
            // first. Only content the caller may read counts (see above).
            if own.is_none() {
                for id in db::files::may_hold(pool, login.tenant, size, head, 8).await? {
                    if access::content_readable(pool, caller, id).await? {
                        return Ok(UploadBeginOk {
                            hash_required: true,
                            ..pending(String::new(), 0)
                        });
                    }
                }
            }
        }
    }
    let quota = s.transfers.limits.tenant_quota;
    if db::files::usage(pool, login.tenant).await?.saturating_add(size) > quota {
        return Err(refuse(
            ErrorCode::QuotaExceeded,
            "the tenant's storage quota would be exceeded",
        ));
    }
    // Resume: the same share again (keyed), or, without a key, the same
    // content (or, hash later, the same size and head) to the same room.
    let resume = match &keyed {
        Some(_) => own,
        None => {
            db::files::find_upload(pool, login.tenant, login.user, room.id, content, size).await?
        }
    };
    if let Some(upload_id) = resume {
        let offset =
            s.transfers.held_now(&upload_id, TakenBy::Begin).await.map_err(Error::store)?;
        return Ok(pending(upload_id, offset));
    }
    let upload_id = keyed.unwrap_or_else(new_upload_id);
    let row = NewUpload {
        id: &upload_id,
        tenant: login.tenant,
        user: login.user,
        room: room.id,
        name: &name,
        size,
        content,
    };
    db::files::create_upload(pool, &row).await?;
    Ok(pending(upload_id, 0))
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
    room: Room,
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
) -> Result<UploadBeginOk> {
    let Share { room, name, size, keyed } = share;
    let (_, stored_size) = stored;
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
        change: None,
        reply_to: None,
        mentions: None,
    };
    let c = s.committer.submit(msg, room.label()).await?;
    Ok(UploadBeginOk {
        upload_id,
        offset: size,
        complete: true,
        file: Some(FileInfo {
            // `send` refuses `upload:` keys, so an earlier message under
            // this key is this share's file message, with its offer.
            id: c.offer.ok_or_else(|| Error::Internal("a file message without an offer".into()))?,
            name,
            size,
            hash: hash.to_owned(),
        }),
        seq: Some(c.seq),
        hash_required: false,
    })
}
