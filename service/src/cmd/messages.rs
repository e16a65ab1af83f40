//! `send`, `history`, `sync`; `message.edit`, `message.delete`,
//! `message.react`, `thread`.

use qchat_protocol::{
    ChangeOk, DEFAULT_PAGE, EditReq, ErrorCode, HistoryReq, MAX_BODY_LEN, MAX_CLIENT_MSG_ID_LEN,
    MAX_EMOJI_LEN, MAX_PAGE, MessageKind, MessageReq, MessagesOk, ReactReq, ReplyTo, SendOk,
    SendReq, SyncReq, ThreadOk, ThreadReq,
};
use serde_json::Value;

use super::moderation::clean_up;
use super::{change, ok, room};
use crate::access::{Access, Need};
use crate::changes::RoomChange;
use crate::db::messages::Reading;
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
    let access = room(s, login, &r.room, Need::Post).await?;
    let reply_to = match r.reply_to {
        Some(seq) => Some(parent(s, login, &access, &r.room, seq).await?),
        None => None,
    };
    let room = access.room;
    let msg = NewMessage {
        tenant: login.tenant,
        room: room.id,
        sender: Some(login.user),
        sender_name: login.user_name.clone(),
        client_msg_id: Some(r.client_msg_id),
        kind: MessageKind::Text,
        mentions: Some(Box::new(qchat_protocol::parse_mentions(&r.body)))
            .filter(|m| m.room || !m.names.is_empty()),
        body: r.body,
        ts: db::now_ms(),
        file: None,
        change: None,
        reply_to,
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
    let rows = db::messages::before(&s.pool, &reading(login, &room), before, limit);
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
    let rows = db::messages::after(&s.pool, &reading(login, &room), r.after_seq, limit);
    let (messages, more) = paging::fill(rows, limit as usize).await?;
    if more && messages.len() < limit as usize {
        s.metrics.page_cut_short();
    }
    ok(&MessagesOk { room: room.name, messages, more })
}

fn reading(login: &Login, room: &db::Room) -> Reading {
    Reading { tenant: login.tenant, room: room.id, label: room.label(), viewer: login.user }
}

/// The message a reply answers: one a user sent (text or file), in the
/// same room, not deleted.
async fn parent(
    s: &Shared,
    login: &Login,
    access: &Access,
    reference: &str,
    seq: u64,
) -> Result<ReplyTo> {
    let found = db::messages::one(&s.pool, &reading(login, &access.room), seq).await?;
    match found {
        Some(m) if m.kind != MessageKind::System && m.deleted.is_none() => Ok(ReplyTo {
            seq,
            sender: m.sender,
            excerpt: db::messages::excerpt(&m.body),
            deleted: false,
        }),
        _ => Err(refuse(ErrorCode::NotFound, format!("no message {seq} in {reference}"))),
    }
}

/// Hands a change to one message to the writer, which finds the message
/// and decides the caller's right to it (`changes`, `access`).
async fn message_change(
    s: &Shared,
    login: &Login,
    reference: &str,
    what: RoomChange,
) -> Result<Value> {
    // Resolving the room answers `not_found` for a room the caller cannot
    // see; what they may do to the message is decided with it, in the
    // writer's transaction.
    let a = room(s, login, reference, Need::See).await?;
    let done = s.committer.submit_change(change(login, reference, &a.room, what)).await?;
    clean_up(s, login, &done.cleanup).await;
    ok(&ChangeOk { seq: done.seq })
}

/// `message.edit`: the sender replaces the text of their message.
pub(super) async fn edit(s: &Shared, login: &Login, r: EditReq) -> Result<Value> {
    if r.body.len() > MAX_BODY_LEN {
        return Err(refuse(ErrorCode::TooLarge, format!("message body over {MAX_BODY_LEN} bytes")));
    }
    message_change(s, login, &r.room, RoomChange::Edit { seq: r.seq, body: r.body }).await
}

/// `message.delete`: a tombstone in place of the message; its body leaves
/// the database file (SQLite: `secure_delete` overwrote it, and the
/// checkpoint here empties the WAL of older copies).
pub(super) async fn delete(s: &Shared, login: &Login, r: MessageReq) -> Result<Value> {
    let reply = message_change(s, login, &r.room, RoomChange::DeleteMessage { seq: r.seq }).await?;
    db::messages::checkpoint(&s.pool).await;
    Ok(reply)
}

/// `message.react`: adds or takes back the caller's reaction.
pub(super) async fn react(s: &Shared, login: &Login, r: ReactReq) -> Result<Value> {
    if r.emoji.len() > MAX_EMOJI_LEN {
        return Err(refuse(ErrorCode::TooLarge, format!("emoji over {MAX_EMOJI_LEN} bytes")));
    }
    if r.emoji.is_empty() || r.emoji.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(refuse(
            ErrorCode::BadRequest,
            "emoji must be 1 or more characters without white space",
        ));
    }
    let what = RoomChange::React { seq: r.seq, emoji: r.emoji, add: !r.remove };
    message_change(s, login, &r.room, what).await
}

/// `thread`: a message and one page of its replies, oldest first. The
/// parent counts against the page's frame budget like its replies.
pub(super) async fn thread(s: &Shared, login: &Login, r: ThreadReq) -> Result<Value> {
    let limit = page(r.limit, DEFAULT_PAGE)?;
    let room = room(s, login, &r.room, Need::Read).await?.room;
    let reading = reading(login, &room);
    let Some(message) = db::messages::one(&s.pool, &reading, r.seq).await? else {
        return Err(refuse(ErrorCode::NotFound, format!("no message {} in {}", r.seq, r.room)));
    };
    let rows = db::messages::replies(&s.pool, &reading, r.seq, r.after_seq.unwrap_or(0), limit);
    let budget = paging::LIST_BUDGET.saturating_sub(paging::encoded_len(&message)?);
    let (messages, more) = paging::fill_within(rows, limit as usize, budget).await?;
    ok(&ThreadOk { room: room.name, message, messages, more })
}
