//! `room.invite`, `room.kick`, `room.ban`, `room.unban`, `room.role`,
//! `room.topic`, `room.rename`, `room.private`, `room.archive`,
//! `room.delete`: resolve the room, check the fields, hand the change to the
//! writer (which decides it against the state in its transaction and
//! records it), then clean up what the change left outside the database.

use qchat_protocol::{
    ArchiveReq, ChangeOk, ErrorCode, MAX_REASON_LEN, MAX_TOPIC_LEN, ModerateReq, PrivateReq,
    RenameReq, RoleReq, TopicReq, UserReq,
};
use serde_json::Value;

use super::{change, check_name, empty, ok, room};
use crate::access::Need;
use crate::changes::{Cleanup, RoomChange};
use crate::db;
use crate::error::{Result, refuse};
use crate::quota::kind::Created;
use crate::state::{Login, Shared};

/// Runs `what` on the room `reference` names, after checking `need`.
async fn apply(
    s: &Shared,
    login: &Login,
    reference: &str,
    need: Need,
    what: RoomChange,
) -> Result<Value> {
    let a = room(s, login, reference, need).await?;
    let done = s.committer.submit_change(change(login, reference, &a.room, what)).await?;
    clean_up(s, login, &done.cleanup).await;
    ok(&ChangeOk { seq: done.seq })
}

/// Stops and discards the uploads a change cancelled and removes the stored
/// content no room offers any more. After the commit: a crash before this
/// leaves files without rows, which the start-up sweep removes.
pub(super) async fn clean_up(s: &Shared, login: &Login, cleanup: &Cleanup) {
    let transfers = &s.transfers;
    for id in &cleanup.uploads {
        // A stream still receiving stops with `forbidden` and discards its
        // bytes itself; these are the others'.
        transfers.revoke(id);
        transfers.store.discard(id).await;
    }
    for hash in &cleanup.unreferenced {
        transfers.store.remove_unreferenced(&s.pool, login.tenant, hash).await;
    }
}

/// Checks a free text shown to others (topic, reason).
fn text(what: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(refuse(ErrorCode::TooLarge, format!("{what} over {max} bytes")));
    }
    if value.chars().any(char::is_control) {
        return Err(refuse(ErrorCode::BadRequest, format!("{what} holds control characters")));
    }
    Ok(())
}

fn user(name: &str) -> Result<String> {
    check_name("user", name)?;
    Ok(name.to_owned())
}

/// `room.invite`, within the inviter's and the tenant's quotas of pending
/// invitations (checked by the writer, `quota`).
pub(super) async fn invite(s: &Shared, login: &Login, r: UserReq) -> Result<Value> {
    let what = RoomChange::Invite { user: user(&r.user)? };
    let reply = apply(s, login, &r.room, Need::Moderate, what).await?;
    if reply.get("seq").is_some() {
        s.metrics.created(Created::Invitation);
    }
    Ok(reply)
}

pub(super) async fn kick(s: &Shared, login: &Login, r: ModerateReq) -> Result<Value> {
    if let Some(reason) = &r.reason {
        text("reason", reason, MAX_REASON_LEN)?;
    }
    let what = RoomChange::Kick { user: user(&r.user)?, reason: r.reason };
    apply(s, login, &r.room, Need::Moderate, what).await
}

pub(super) async fn ban(s: &Shared, login: &Login, r: ModerateReq) -> Result<Value> {
    if let Some(reason) = &r.reason {
        text("reason", reason, MAX_REASON_LEN)?;
    }
    let what = RoomChange::Ban { user: user(&r.user)?, reason: r.reason };
    apply(s, login, &r.room, Need::Moderate, what).await
}

pub(super) async fn unban(s: &Shared, login: &Login, r: UserReq) -> Result<Value> {
    let what = RoomChange::Unban { user: user(&r.user)? };
    apply(s, login, &r.room, Need::Moderate, what).await
}

pub(super) async fn role(s: &Shared, login: &Login, r: RoleReq) -> Result<Value> {
    let what = RoomChange::Role { user: user(&r.user)?, role: r.role };
    apply(s, login, &r.room, Need::Own, what).await
}

pub(super) async fn topic(s: &Shared, login: &Login, r: TopicReq) -> Result<Value> {
    text("topic", &r.topic, MAX_TOPIC_LEN)?;
    apply(s, login, &r.room, Need::Own, RoomChange::Topic(r.topic)).await
}

pub(super) async fn rename(s: &Shared, login: &Login, r: RenameReq) -> Result<Value> {
    check_name("room", &r.name)?;
    apply(s, login, &r.room, Need::Own, RoomChange::Rename(r.name)).await
}

pub(super) async fn private(s: &Shared, login: &Login, r: PrivateReq) -> Result<Value> {
    apply(s, login, &r.room, Need::Own, RoomChange::Private(r.private)).await
}

pub(super) async fn archive(s: &Shared, login: &Login, r: ArchiveReq) -> Result<Value> {
    apply(s, login, &r.room, Need::Own, RoomChange::Archive(r.archived)).await
}

/// `room.delete`: the room and its messages go; SQLite's `secure_delete`
/// overwrote them in the pages they held, and the checkpoint here empties
/// the WAL of older copies, so none is left on disk without a restart.
pub(super) async fn delete(s: &Shared, login: &Login, reference: &str) -> Result<Value> {
    apply(s, login, reference, Need::Own, RoomChange::Delete).await?;
    db::messages::checkpoint(&s.pool).await;
    tracing::info!(tenant = %login.tenant_name, room = %reference, "room deleted");
    empty()
}
