//! `rooms`, `room.create`, `room.join`, `room.leave`, `members`, `read`.

use futures_util::TryStreamExt as _;
use qchat_protocol::{
    ErrorCode, MemberEvent, MemberInfo, MembersOk, MembersReq, RoomOk, RoomsOk, RoomsReq,
};
use serde_json::Value;

use super::{check_name, empty, member_room, ok};
use crate::db;
use crate::error::{Result, refuse};
use crate::paging;
use crate::quota::{self, kind::Created};
use crate::state::{Login, Shared};

/// One page of the tenant's rooms, by name, after `after`: as many as fit
/// in one frame.
pub(super) async fn list(s: &Shared, login: &Login, r: RoomsReq) -> Result<Value> {
    if let Some(after) = &r.after {
        check_name("room", after)?;
    }
    let rows = db::rooms::list_for_user(&s.pool, login.tenant, login.user, r.after.as_deref());
    let (rooms, more) = paging::fill(rows, usize::MAX).await?;
    if more {
        s.metrics.page_cut_short();
    }
    ok(&RoomsOk { rooms, more })
}

/// `room.create`: creates the room and joins the caller, within the
/// caller's and the tenant's room quotas (`quota`).
pub(super) async fn create(s: &Shared, login: &Login, room: &str) -> Result<Value> {
    check_name("room", room)?;
    let pool = &s.pool;
    // A write transaction (SQLite: BEGIN IMMEDIATE) and the tenant's row
    // locked (PostgreSQL): the quota counts below must see every concurrent
    // creation, on every node.
    let mut tx = pool.begin_write().await?;
    db::tenants::lock(&mut tx, login.tenant).await?;
    let r = db::rooms::create_by(&mut tx, login.tenant, room, login.user).await.map_err(
        |e| match e {
            db::DbError::Conflict => refuse(ErrorCode::Conflict, format!("room {room} exists")),
            e => e.into(),
        },
    )?;
    quota::check(
        &mut tx.conn(),
        &s.config.quotas,
        &s.metrics,
        Created::Room,
        login.tenant,
        login.user,
    )
    .await?;
    db::rooms::join(&mut tx, login.tenant, r.id, login.user).await?;
    tx.commit().await?;
    s.metrics.created(Created::Room);
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

/// One page of a room's members, by name, after `after`: as many as fit in
/// one frame.
pub(super) async fn members(s: &Shared, login: &Login, req: MembersReq) -> Result<Value> {
    let (r, _) = member_room(s, login, &req.room).await?;
    if let Some(after) = &req.after {
        check_name("user", after)?;
    }
    let hub = &s.hub;
    let rows = db::rooms::members(&s.pool, login.tenant, r.id, req.after.as_deref())
        .map_ok(|(id, user)| MemberInfo { online: hub.is_online(login.tenant, id), user });
    let (members, more) = paging::fill(rows, usize::MAX).await?;
    if more {
        s.metrics.page_cut_short();
    }
    ok(&MembersOk { room: r.name, members, more })
}

pub(super) async fn read(s: &Shared, login: &Login, room: &str, seq: u64) -> Result<Value> {
    let (r, _) = member_room(s, login, room).await?;
    db::rooms::set_read(&s.pool, login.tenant, r.id, login.user, seq).await?;
    empty()
}
