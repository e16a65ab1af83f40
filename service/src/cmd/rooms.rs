//! `rooms`, `room.create`, `room.join`, `room.leave`, `members`, `read`,
//! `dm.open`.

use futures_util::TryStreamExt as _;
use qchat_protocol::{
    DmOpenReq, ErrorCode, Event, MAX_DM_MEMBERS, MemberInfo, MembersOk, MembersReq, ReadEvent,
    Role, RoomCreateReq, RoomEvent, RoomKind, RoomOk, RoomsOk, RoomsReq, TYPING_INTERVAL_MS,
    Typing, encode_json, valid_room_id,
};
use serde_json::Value;

use super::{change, check_name, empty, ok, room, who};
use crate::access::{self, Need};
use crate::changes::RoomChange;
use crate::db::members::{self, Lookup};
use crate::db::{self, DbError, Room, Standing, UserId};
use crate::error::{Error, Result, refuse};
use crate::hub::ConnId;
use crate::paging;
use crate::quota::{self, kind::Created};
use crate::state::{Login, Shared};

/// One page of the rooms the caller sees, by name, after `after`: as many
/// as fit in one frame.
pub(super) async fn list(s: &Shared, login: &Login, r: RoomsReq) -> Result<Value> {
    if let Some(after) = &r.after
        && !valid_room_id(after)
    {
        check_name("room", after)?;
    }
    let (rooms, more) = access::list(&s.pool, who(login), r.after.as_deref()).await?;
    if more {
        s.metrics.page_cut_short();
    }
    ok(&RoomsOk { rooms, more })
}

/// The standing of a new member of `room` with `role`: read up to the
/// room's `last_seq` (`db::rooms::join`).
fn member(role: Role, room: &Room) -> Standing {
    Standing { role: Some(role), read_seq: Some(room.last_seq), ..Standing::default() }
}

/// Tells every connection of `user` about a room that appeared for them.
fn announce(s: &Shared, login: &Login, user: UserId, info: qchat_protocol::RoomInfo, r: &Room) {
    match encode_json(&Event::Room(RoomEvent { room: info })) {
        Ok(frame) => s.hub.to_user(login.tenant, user, &r.label(), &frame),
        Err(e) => tracing::error!(cause = %e, "encoding room event"),
    }
}

/// Refuses a name that a room the caller can see already has: the caller
/// could no longer tell the two apart by name. Rooms the caller cannot see
/// do not count (their names are not taken for the caller).
async fn name_free(s: &Shared, login: &Login, name: &str) -> Result<()> {
    let rows = members::standings(&s.pool, login.tenant, login.user, Lookup::Name(name)).await?;
    if rows.iter().any(|(r, st)| access::visible(r, st)) {
        return Err(refuse(ErrorCode::Conflict, format!("room {name} exists")));
    }
    Ok(())
}

/// `room.create`: creates the room with the caller as its owner and only
/// member, within the caller's and the tenant's room quotas (`quota`).
pub(super) async fn create(s: &Shared, login: &Login, r: &RoomCreateReq) -> Result<Value> {
    let name = &r.room;
    check_name("room", name)?;
    name_free(s, login, name).await?;
    let kind = if r.private { RoomKind::Private } else { RoomKind::Public };
    // A write transaction (SQLite: BEGIN IMMEDIATE) and the tenant's row
    // locked (PostgreSQL): the quota counts below must see every concurrent
    // creation, on every node.
    let mut tx = s.pool.begin_write().await?;
    db::tenants::lock(&mut tx, login.tenant).await?;
    let room = db::rooms::create(&mut tx, login.tenant, name, kind, Some(login.user))
        .await
        .map_err(|e| match e {
            DbError::Conflict => refuse(ErrorCode::Conflict, format!("room {name} exists")),
            e => e.into(),
        })?;
    let quotas = &s.config.quotas;
    quota::check(&mut tx.conn(), quotas, &s.metrics, Created::Room, login.tenant, login.user)
        .await?;
    db::rooms::join(tx.conn(), login.tenant, room.id, login.user, Role::Owner).await?;
    tx.commit().await?;
    s.metrics.created(Created::Room);
    s.hub.subscribe_user(login.tenant, login.user, room.id);
    let info =
        db::rooms::room_info(&room, &member(Role::Owner, &room), db::Counts::default(), None);
    announce(s, login, login.user, info.clone(), &room);
    tracing::info!(tenant = %login.tenant_name, room = %name, private = r.private, "room created");
    ok(&RoomOk { room: info })
}

pub(super) async fn join(s: &Shared, login: &Login, reference: &str) -> Result<Value> {
    let a = room(s, login, reference, Need::Join).await?;
    if a.standing.role.is_some() {
        return ok(&RoomOk { room: access::info(&s.pool, who(login), &a).await? });
    }
    let done =
        s.committer.submit_change(change(login, reference, &a.room, RoomChange::Join)).await?;
    // The room as it was just before the join's own system message, as the
    // `room` event tells the user's other connections: a client tracking
    // the room from this reply is handed that message next, whichever of
    // the two it reads first.
    if let Some(info) = done.joined {
        return ok(&RoomOk { room: *info });
    }
    // Another connection of the user's joined first: the room as it now
    // stands for the user, with the marker and counts that join gave it,
    // read back (a marker assumed here could wipe a client's real counts).
    match room(s, login, reference, Need::Read).await {
        Ok(now) if now.standing.role.is_some() => {
            ok(&RoomOk { room: access::info(&s.pool, who(login), &now).await? })
        }
        // Left again meanwhile: the room at the join, marker unknown (0).
        _ => ok(&RoomOk {
            room: db::rooms::room_info(
                &done.room,
                &Standing { role: Some(Role::Member), ..Standing::default() },
                db::Counts::default(),
                None,
            ),
        }),
    }
}

pub(super) async fn leave(s: &Shared, login: &Login, reference: &str) -> Result<Value> {
    let a = room(s, login, reference, Need::Leave).await?;
    let done =
        s.committer.submit_change(change(login, reference, &a.room, RoomChange::Leave)).await?;
    super::moderation::clean_up(s, login, &done.cleanup).await;
    empty()
}

/// One page of a room's members, by name, after `after`: as many as fit in
/// one frame.
pub(super) async fn members(s: &Shared, login: &Login, req: MembersReq) -> Result<Value> {
    let a = room(s, login, &req.room, Need::Read).await?;
    if let Some(after) = &req.after {
        check_name("user", after)?;
    }
    let dm = a.room.kind == RoomKind::Dm;
    let hub = &s.hub;
    let rows = members::members(&s.pool, login.tenant, a.room.id, req.after.as_deref()).map_ok(
        |(id, user, role, display_name)| MemberInfo {
            online: hub.is_online(login.tenant, id),
            user,
            role: (!dm).then_some(role),
            display_name,
        },
    );
    let (members, more) = paging::fill(rows, usize::MAX).await?;
    if more {
        s.metrics.page_cut_short();
    }
    ok(&MembersOk { room: a.room.name, members, more })
}

/// `read`: moves the marker, and tells the user's other connections where
/// it went when it moved.
pub(super) async fn read(
    s: &Shared,
    login: &Login,
    conn: ConnId,
    reference: &str,
    seq: u64,
) -> Result<Value> {
    let a = room(s, login, reference, Need::Read).await?;
    // The move, then the counts after it. No transaction around the two:
    // `tally` is one statement, so its marker, `last_seq` and counts are one
    // snapshot (the event's figures are those at the marker and `last_seq`
    // it names), and both only ever rise, so a later tally never says less.
    // Holding the write lock through the counting would stall the writer.
    let now = db::rooms::set_read(&s.pool, login.tenant, a.room.id, login.user, seq).await?;
    let moved = now.filter(|n| Some(*n) > a.standing.read_seq);
    let tally = match moved {
        Some(_) => db::mentions::tally(&s.pool, login.tenant, a.room.id, login.user).await?,
        None => None,
    };
    if let Some(t) = tally {
        // The counts after the move, so the other connections show them
        // without asking `rooms` again, with the `last_seq` they were
        // taken at: the message events past it are the client's to add.
        let label = a.room.label();
        let ev = Event::Read(ReadEvent {
            room: label.name.clone(),
            room_id: label.id.clone(),
            seq: t.read_seq,
            last_seq: Some(t.last_seq),
            unread: Some(t.counts.unread),
            mentions: Some(t.counts.mentions),
        });
        let frame = encode_json(&ev).map_err(|e| Error::Internal(format!("encoding: {e}")))?;
        s.hub.to_user_except(login.tenant, login.user, conn, &label, &frame);
    }
    empty()
}

/// `typing`: relayed to the room's other members (whoever is subscribed:
/// its members), at most once per [`TYPING_INTERVAL_MS`] per user and
/// room; never stored.
pub(super) async fn typing(s: &Shared, login: &Login, reference: &str) -> Result<Value> {
    let a = room(s, login, reference, Need::Post).await?;
    let label = a.room.label();
    let ev = Event::Typing(Typing {
        room: label.name.clone(),
        room_id: label.id.clone(),
        user: login.user_name.clone(),
    });
    let frame = encode_json(&ev).map_err(|e| Error::Internal(format!("encoding: {e}")))?;
    let interval = std::time::Duration::from_millis(TYPING_INTERVAL_MS);
    s.hub.typing(a.room.id, login.user, &label, &frame, interval);
    empty()
}

/// `dm.open`: the DM of the caller and `users`, created on first use.
pub(super) async fn dm_open(s: &Shared, login: &Login, r: DmOpenReq) -> Result<Value> {
    let mut names: Vec<String> = Vec::new();
    for name in r.users {
        check_name("user", &name)?;
        if name != login.user_name && !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() || names.len() >= MAX_DM_MEMBERS {
        return Err(refuse(
            ErrorCode::BadRequest,
            format!("a direct message has 2 to {MAX_DM_MEMBERS} members, you included"),
        ));
    }
    let pool = &s.pool;
    let found = members::user_ids(pool, login.tenant, &names).await?;
    if let Some(missing) = names.iter().find(|n| !found.iter().any(|(_, f)| f == *n)) {
        return Err(refuse(ErrorCode::NotFound, format!("no user named {missing}")));
    }
    let mut ids: Vec<UserId> = found.iter().map(|(id, _)| *id).collect();
    ids.push(login.user);
    let key = members::dm_key(&ids);
    let reference = format!("@{}", names.join(","));
    // Opened before (by anyone of them), or just now by someone else.
    for _ in 0..2 {
        let existing =
            members::standings(pool, login.tenant, login.user, Lookup::DmKey(&key)).await?;
        if let Some((room, standing)) = existing.into_iter().next() {
            let a = access::Access { room, standing };
            if access::decide(&a.room, &a.standing, Need::Read) != access::Verdict::Allowed {
                return Err(access::not_found(&reference));
            }
            return ok(&RoomOk { room: access::info(pool, who(login), &a).await? });
        }
        // As in `create`: the quota counts below must see every concurrent
        // one, on every node.
        let mut tx = pool.begin_write().await?;
        db::tenants::lock(&mut tx, login.tenant).await?;
        let room = match db::rooms::create_dm(&mut tx, login.tenant, &key, login.user).await {
            Ok(room) => room,
            Err(DbError::Conflict) => continue,
            Err(e) => return Err(e.into()),
        };
        let quotas = &s.config.quotas;
        let mut conn = tx.conn();
        quota::check(&mut conn, quotas, &s.metrics, Created::Dm, login.tenant, login.user).await?;
        for id in &ids {
            db::rooms::join(conn.re(), login.tenant, room.id, *id, Role::Member).await?;
        }
        tx.commit().await?;
        s.metrics.created(Created::Dm);
        let mut all: Vec<String> = found.iter().map(|(_, n)| n.clone()).collect();
        all.push(login.user_name.clone());
        all.sort();
        let mut mine = None;
        for (id, name) in found
            .iter()
            .map(|(id, n)| (*id, n.as_str()))
            .chain([(login.user, login.user_name.as_str())])
        {
            s.hub.subscribe_user(login.tenant, id, room.id);
            let info = db::rooms::room_info(
                &room,
                &member(Role::Member, &room),
                db::Counts::default(),
                Some(access::dm_title(&all, name)),
            );
            if id == login.user {
                mine = Some(info.clone());
            }
            announce(s, login, id, info, &room);
        }
        tracing::info!(tenant = %login.tenant_name, members = ids.len(), "direct message opened");
        return ok(&RoomOk {
            room: mine.unwrap_or_else(|| {
                db::rooms::room_info(
                    &room,
                    &member(Role::Member, &room),
                    db::Counts::default(),
                    None,
                )
            }),
        });
    }
    Err(Error::Internal("direct message vanished while opening it".into()))
}
