//! `rooms`, `room.create`, `room.join`, `room.leave`, `members`, `read`.

use qchat_protocol::{ErrorCode, MemberEvent, MemberInfo, MembersOk, RoomOk, RoomsOk};
use serde_json::Value;

use super::{check_name, empty, member_room, ok};
use crate::db;
use crate::error::{Result, refuse};
use crate::state::{Login, Shared};

pub(super) async fn list(s: &Shared, login: &Login) -> Result<Value> {
    let rooms = db::rooms::list_for_user(&s.pool, login.tenant, login.user).await?;
    ok(&RoomsOk { rooms })
}

pub(super) async fn create(s: &Shared, login: &Login, room: &str) -> Result<Value> {
    check_name("room", room)?;
    let pool = &s.pool;
    let mut tx = pool.begin().await?;
    let r = db::rooms::create(&mut *tx, login.tenant, room).await.map_err(|e| match e {
        db::DbError::Conflict => refuse(ErrorCode::Conflict, format!("room {room} exists")),
        e => e.into(),
    })?;
    db::rooms::join(&mut *tx, login.tenant, r.id, login.user).await?;
    tx.commit().await?;
    s.hub.subscribe_user(login.tenant, login.user, r.id);
    tracing::info!(tenant = %login.tenant_name, room, "room created");
    ok(&RoomOk { room: db::rooms::room_info(r.name, 0, Some(0)) })
}

pub(super) async fn join(s: &Shared, login: &Login, room: &str) -> Result<Value> {
    check_name("room", room)?;
    let pool = &s.pool;
    let r = db::rooms::by_name(pool, login.tenant, room)
        .await?
        .ok_or_else(|| refuse(ErrorCode::NotFound, format!("no room named {room}")))?;
    let new = db::rooms::join(pool, login.tenant, r.id, login.user).await?;
    s.hub.subscribe_user(login.tenant, login.user, r.id);
    if new {
        s.hub.member_event(
            r.id,
            MemberEvent { room: r.name.clone(), user: login.user_name.clone(), joined: true },
        );
    }
    let read = db::rooms::membership(pool, login.tenant, r.id, login.user).await?.unwrap_or(0);
    ok(&RoomOk { room: db::rooms::room_info(r.name, r.last_seq, Some(read)) })
}

pub(super) async fn leave(s: &Shared, login: &Login, room: &str) -> Result<Value> {
    check_name("room", room)?;
    let pool = &s.pool;
    let r = db::rooms::by_name(pool, login.tenant, room)
        .await?
        .ok_or_else(|| refuse(ErrorCode::NotFound, format!("no room named {room}")))?;
    if db::rooms::leave(pool, login.tenant, r.id, login.user).await? {
        // Sent before unsubscribing so the user's other connections hear it too.
        s.hub.member_event(
            r.id,
            MemberEvent { room: r.name.clone(), user: login.user_name.clone(), joined: false },
        );
    }
    s.hub.unsubscribe_user(login.tenant, login.user, r.id);
    empty()
}

pub(super) async fn members(s: &Shared, login: &Login, room: &str) -> Result<Value> {
    let (r, _) = member_room(s, login, room).await?;
    let members = db::rooms::members(&s.pool, login.tenant, r.id)
        .await?
        .into_iter()
        .map(|(id, user)| MemberInfo { online: s.hub.is_online(login.tenant, id), user })
        .collect();
    ok(&MembersOk { room: r.name, members })
}

pub(super) async fn read(s: &Shared, login: &Login, room: &str, seq: u64) -> Result<Value> {
    let (r, _) = member_room(s, login, room).await?;
    db::rooms::set_read(&s.pool, login.tenant, r.id, login.user, seq).await?;
    empty()
}
