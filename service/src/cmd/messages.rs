//! `send`, `history`, `sync`.

use qchat_protocol::{
    DEFAULT_PAGE, ErrorCode, HistoryReq, MAX_BODY_LEN, MAX_CLIENT_MSG_ID_LEN, MAX_PAGE,
    MessageKind, MessagesOk, SendOk, SendReq, SyncReq,
};
use serde_json::Value;

use super::{ok, room};
use crate::access::Need;
use crate::db::{self, NewMessage};
use crate::error::{Result, refuse};
use crate::paging;
use crate::state::{Login, Shared};

/// What the `client_msg_id` of every file message starts with (then its
/// upload id): reserved, so that a text message can never take the key a
/// file message is looked up by.
pub(super) const FILE_MSG_PREFIX: &str = "upload:";

pub(super) async fn send(s: &Shared, login: &Login, r: SendReq) -> Result<Value> {
    if r.body.len() > MAX_BODY_LEN {
        return Err(refuse(ErrorCode::TooLarge, format!("message body over {MAX_BODY_LEN} bytes")));
    }
    if r.client_msg_id.is_empty() || r.client_msg_id.len() > MAX_CLIENT_MSG_ID_LEN {
        return Err(refuse(
            ErrorCode::BadRequest,
            format!("client_msg_id must be 1 to {MAX_CLIENT_MSG_ID_LEN} bytes"),
        ));
    }
    if r.client_msg_id.starts_with(FILE_MSG_PREFIX) {
        return Err(refuse(
            ErrorCode::BadRequest,
            format!("client_msg_id values starting with {FILE_MSG_PREFIX} are for file messages"),
        ));
    }
    let room = room(s, login, &r.room, Need::Post).await?.room;
    let msg = NewMessage {
        tenant: login.tenant,
        room: room.id,
        sender: Some(login.user),
        sender_name: login.user_name.clone(),
        client_msg_id: Some(r.client_msg_id),
        kind: MessageKind::Text,
        body: r.body,
        ts: db::now_ms(),
        file: None,
        change: None,
    };
    let sent = s.committer.submit(msg, room.label()).await?;
    ok(&SendOk::from(sent))
}

fn page(limit: Option<u32>, default: u32) -> Result<u32> {
    match limit {
        None => Ok(default),
        Some(n) if (1..=MAX_PAGE).contains(&n) => Ok(n),
        Some(_) => Err(refuse(ErrorCode::BadRequest, format!("limit must be 1 to {MAX_PAGE}"))),
    }
}

/// The newest messages before `before_seq`, as many as `limit` allows and
/// fit in one frame (newest first: a page cut short keeps the ones next to
/// `before_seq`), sent in ascending order.
pub(super) async fn history(s: &Shared, login: &Login, r: HistoryReq) -> Result<Value> {
    let limit = page(r.limit, DEFAULT_PAGE)?;
    let room = room(s, login, &r.room, Need::Read).await?.room;
    let before = r.before_seq.unwrap_or(u64::MAX);
    let rows = db::messages::before(&s.pool, login.tenant, room.id, &room.label(), before, limit);
    let (mut messages, more) = paging::fill(rows, limit as usize).await?;
    messages.reverse();
    if more && messages.len() < limit as usize {
        s.metrics.page_cut_short();
    }
    ok(&MessagesOk { room: room.name, messages, more })
}

/// The oldest messages after `after_seq`, as many as `limit` allows and fit
/// in one frame.
pub(super) async fn sync(s: &Shared, login: &Login, r: SyncReq) -> Result<Value> {
    let limit = page(r.limit, MAX_PAGE)?;
    let room = room(s, login, &r.room, Need::Read).await?.room;
    let label = room.label();
    let rows = db::messages::after(&s.pool, login.tenant, room.id, &label, r.after_seq, limit);
    let (messages, more) = paging::fill(rows, limit as usize).await?;
    if more && messages.len() < limit as usize {
        s.metrics.page_cut_short();
    }
    ok(&MessagesOk { room: room.name, messages, more })
}
