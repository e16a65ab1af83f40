//! Roles (`memberships.role`), `invitations`, `bans` and tenant admins:
//! the facts the access module decides from, and the statements that change
//! them.

use std::collections::HashMap;

use futures_util::stream::BoxStream;
use futures_util::{StreamExt as _, TryStreamExt as _};
use qchat_protocol::Role;
// AssertSqlSafe: the dynamic statements below are built from constants and
// `$N` placeholders only; every value is bound.
use sqlx::AssertSqlSafe;

use super::mentions::{count_columns, counts_of};
use super::rooms::{ROOM_COLUMNS, Room, Row as RoomRow, Standing, Tie, untie};
use super::sql::{numbered, placeholders, to_u64};
use super::{Conn, Counts, Ex, RoomId, TenantId, UserId, now_ms, on, on_conn};

/// What the standing columns read for user `u` and room `r`.
const STANDING_COLUMNS: &str = "m.role as role, m.read_seq as read_seq,
    exists (select 1 from invitations i where i.room_id = r.id and i.user_id = u.id) as invited,
    exists (select 1 from bans b where b.room_id = r.id and b.user_id = u.id) as banned,
    u.admin as admin";

/// `rooms r` joined with the user `u` (bound as `$1`) and its membership.
const STANDING_FROM: &str = "from rooms r
    join users u on u.tenant_id = r.tenant_id and u.id = $1
    left join memberships m on m.room_id = r.id and m.tenant_id = r.tenant_id and m.user_id = u.id";

#[derive(sqlx::FromRow)]
struct StandingRow {
    #[sqlx(flatten)]
    room: RoomRow,
    role: Option<String>,
    read_seq: Option<i64>,
    invited: bool,
    banned: bool,
    admin: bool,
}

impl StandingRow {
    fn split(self) -> (Room, Standing) {
        let standing = Standing {
            // A stored role we cannot read is the least one.
            role: self.role.map(|r| Role::parse(&r).unwrap_or(Role::Member)),
            read_seq: self.read_seq.map(to_u64),
            invited: self.invited,
            banned: self.banned,
            admin: self.admin,
        };
        (self.room.into(), standing)
    }
}

/// Which rooms a reference can mean.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Lookup<'a> {
    /// By row id.
    Id(RoomId),
    /// By handle (`+` and hex).
    Handle(&'a str),
    /// By name: the public room with this name, and private rooms with this
    /// title.
    Name(&'a str),
    /// The DM of these members (sorted ids).
    DmKey(&'a str),
}

/// Every live room of the tenant that `lookup` can mean, with `user`'s
/// standing in each. Visibility is not decided here: the same query runs
/// whether the rooms exist, are hidden from the user or not.
pub(crate) async fn standings(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    lookup: Lookup<'_>,
) -> Result<Vec<(Room, Standing)>, sqlx::Error> {
    let matches = match lookup {
        Lookup::Id(_) => "r.id = $3",
        Lookup::Handle(_) => "r.handle = $3",
        Lookup::Name(_) => "(r.name = $3 or (r.kind = 'private' and r.title = $3))",
        Lookup::DmKey(_) => "r.dm_key = $3",
    };
    let sql = format!(
        "select {ROOM_COLUMNS}, {STANDING_COLUMNS} {STANDING_FROM}
         where r.tenant_id = $2 and not r.disabled and {matches} order by r.id"
    );
    let rows: Vec<StandingRow> = on!(db, |e| {
        let q = sqlx::query_as::<_, StandingRow>(AssertSqlSafe(sql)).bind(user.0).bind(tenant.0);
        let q = match lookup {
            Lookup::Id(id) => q.bind(id.0),
            Lookup::Handle(h) | Lookup::DmKey(h) | Lookup::Name(h) => q.bind(h),
        };
        q.fetch_all(e).await
    })?;
    Ok(rows.into_iter().map(StandingRow::split).collect())
}

/// The rooms that may be in `user`'s list (public ones, and those the user
/// is a member of or invited to; every private one for an admin), with the
/// user's standing and, when `counted`, their unread and mention counts
/// (else zero), by `name` from the first after `after` (the `rooms`
/// keyset: names are unique per tenant, and ASCII, so SQLite's binary
/// order is the client's too). A superset: access decides.
pub(crate) fn candidates<'e>(
    db: impl Into<Ex<'e>>,
    tenant: TenantId,
    user: UserId,
    after: Option<&str>,
    counted: bool,
) -> BoxStream<'e, Result<(Room, Standing, Counts), sqlx::Error>> {
    let db = db.into();
    let counts = if counted {
        count_columns(db.backend())
    } else {
        "cast(0 as bigint) as unread, cast(0 as bigint) as mentions".into()
    };
    let sql = format!(
        "select {ROOM_COLUMNS}, {STANDING_COLUMNS}, {counts} {STANDING_FROM}
         where r.tenant_id = $2 and not r.disabled and r.name > $3
           and (r.kind = 'public' or m.user_id is not null
                or exists (select 1 from invitations i where i.room_id = r.id and i.user_id = u.id)
                or (r.kind = 'private' and u.admin))
         order by r.name"
    );
    #[derive(sqlx::FromRow)]
    struct ListedRow {
        #[sqlx(flatten)]
        standing: StandingRow,
        unread: i64,
        mentions: i64,
    }
    let after = after.unwrap_or_default().to_owned();
    on!(db, |e| sqlx::query_as::<_, ListedRow>(AssertSqlSafe(sql))
        .bind(user.0)
        .bind(tenant.0)
        .bind(after)
        .fetch(e)
        .map_ok(|row| {
            let (room, standing) = row.standing.split();
            (room, standing, counts_of(row.unread, row.mentions))
        })
        .boxed())
}

/// The other members' names of every DM `user` is in, by room (the titles
/// of the user's DMs), by name.
pub(crate) async fn dm_names(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
) -> Result<HashMap<RoomId, Vec<String>>, sqlx::Error> {
    let rows: Vec<(i64, String)> = on!(db, |e| sqlx::query_as(
        "select o.room_id, u.name from memberships me
         join rooms r on r.id = me.room_id and r.tenant_id = me.tenant_id and r.kind = 'dm'
         join memberships o on o.room_id = me.room_id and o.tenant_id = me.tenant_id
         join users u on u.id = o.user_id and u.tenant_id = o.tenant_id
         where me.tenant_id = $1 and me.user_id = $2 order by u.name",
    )
    .bind(tenant.0)
    .bind(user.0)
    .fetch_all(e)
    .await)?;
    let mut out: HashMap<RoomId, Vec<String>> = HashMap::new();
    for (room, name) in rows {
        out.entry(RoomId(room)).or_default().push(name);
    }
    Ok(out)
}

/// The standing of each `(tenant, room, user)`, in one statement (the
/// writer checks every sender of a batch at once). Triples whose room or
/// user is gone, or not of that tenant, are missing from the answer.
pub(crate) async fn standings_of(
    conn: &mut Conn<'_>,
    triples: &[(TenantId, RoomId, UserId)],
) -> Result<HashMap<(RoomId, UserId), (Room, Standing)>, sqlx::Error> {
    let mut out = HashMap::new();
    // Three parameters each: far below either engine's limit per statement.
    for chunk in triples.chunks(500) {
        let values = placeholders(chunk.len(), 3);
        let sql = format!(
            "select k.column2 as pair_room, k.column3 as pair_user, {ROOM_COLUMNS}, {STANDING_COLUMNS}
             from (values {values}) as k
             join rooms r on r.id = k.column2 and r.tenant_id = k.column1 and not r.disabled
             join users u on u.tenant_id = r.tenant_id and u.id = k.column3
             left join memberships m on m.room_id = r.id and m.tenant_id = r.tenant_id and m.user_id = u.id"
        );
        #[derive(sqlx::FromRow)]
        struct PairRow {
            pair_room: i64,
            pair_user: i64,
            #[sqlx(flatten)]
            standing: StandingRow,
        }
        let rows: Vec<PairRow> = on_conn!(conn, |e| {
            let mut q = sqlx::query_as::<_, PairRow>(AssertSqlSafe(sql)).persistent(false);
            for (tenant, room, user) in chunk {
                q = q.bind(tenant.0).bind(room.0).bind(user.0);
            }
            q.fetch_all(&mut *e).await?
        });
        for row in rows {
            out.insert((RoomId(row.pair_room), UserId(row.pair_user)), row.standing.split());
        }
    }
    Ok(out)
}

/// A member: user id, name, role in the room and display name.
pub(crate) type Member = (UserId, String, Role, Option<String>);

/// Members of a room with their roles and display names, by name,
/// from the first whose name sorts after `after` (the `members` keyset).
pub(crate) fn members<'e>(
    db: impl Into<Ex<'e>>,
    tenant: TenantId,
    room: RoomId,
    after: Option<&str>,
) -> BoxStream<'e, Result<Member, sqlx::Error>> {
    let after = after.unwrap_or_default().to_owned();
    on!(db, |e| sqlx::query_as::<_, (i64, String, String, Option<String>)>(
        "select u.id, u.name, m.role, u.display_name from memberships m
         join users u on u.id = m.user_id
         where m.tenant_id = $1 and m.room_id = $2 and u.tenant_id = $1 and u.name > $3
         order by u.name",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(after)
    .fetch(e)
    .map_ok(|(id, name, role, display_name)| {
        (UserId(id), name, Role::parse(&role).unwrap_or(Role::Member), display_name)
    })
    .boxed())
}

/// Sets a member's role; `true` when the user is a member.
pub(crate) async fn set_role(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
    role: Role,
) -> Result<bool, sqlx::Error> {
    let n = on!(db, |e| {
        sqlx::query(
        "update memberships set role = $1 where tenant_id = $2 and room_id = $3 and user_id = $4",
    )
    .bind(role.as_str())
    .bind(tenant.0)
    .bind(room.0)
    .bind(user.0)
    .execute(e)
    .await
    .map(|r| r.rows_affected())
    })?;
    Ok(n == 1)
}

/// Makes every owner of the room but `keep` a moderator (ownership moves).
pub(crate) async fn demote_owners(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    keep: UserId,
) -> Result<Vec<UserId>, sqlx::Error> {
    let ids: Vec<i64> = on!(db, |e| sqlx::query_scalar(
        "update memberships set role = 'moderator'
         where tenant_id = $1 and room_id = $2 and role = 'owner' and user_id <> $3
         returning user_id",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(keep.0)
    .fetch_all(e)
    .await)?;
    Ok(ids.into_iter().map(UserId).collect())
}

/// How many members the room has, counted no further than `at_most`
/// (what the callers compare against: a big room's count is never walked).
pub(crate) async fn member_count(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    at_most: u64,
) -> Result<u64, sqlx::Error> {
    let n: i64 = on!(db, |e| sqlx::query_scalar(
        "select count(*) from
           (select 1 from memberships where tenant_id = $1 and room_id = $2 limit $3) as m"
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(i64::try_from(at_most).unwrap_or(i64::MAX))
    .fetch_one(e)
    .await)?;
    Ok(to_u64(n))
}

/// Records an invitation; `true` when it is new.
pub(crate) async fn invite(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
    by: UserId,
) -> Result<bool, sqlx::Error> {
    let n = on!(db, |e| sqlx::query(
        "insert into invitations (tenant_id, room_id, user_id, invited_by, created_at)
         values ($1, $2, $3, $4, $5) on conflict (room_id, user_id) do nothing",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(user.0)
    .bind(by.0)
    .bind(now_ms())
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Invitations pending that `user` sent in the tenant.
pub(crate) async fn count_invitations_by(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
) -> Result<u64, sqlx::Error> {
    let n: i64 = on!(db, |e| sqlx::query_scalar(
        "select count(*) from invitations where tenant_id = $1 and invited_by = $2",
    )
    .bind(tenant.0)
    .bind(user.0)
    .fetch_one(e)
    .await)?;
    Ok(to_u64(n))
}

/// Invitations pending in the tenant.
pub(crate) async fn count_invitations(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
) -> Result<u64, sqlx::Error> {
    let n: i64 =
        on!(db, |e| sqlx::query_scalar("select count(*) from invitations where tenant_id = $1")
            .bind(tenant.0)
            .fetch_one(e)
            .await)?;
    Ok(to_u64(n))
}

/// Drops an invitation; `true` when there was one.
pub(crate) async fn uninvite(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
) -> Result<bool, sqlx::Error> {
    untie(db, Tie::Invitation, tenant, room, user).await
}

/// Records a ban; `true` when it is new.
pub(crate) async fn ban(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
    by: UserId,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let n = on!(db, |e| sqlx::query(
        "insert into bans (tenant_id, room_id, user_id, banned_by, reason, created_at)
         values ($1, $2, $3, $4, $5, $6) on conflict (room_id, user_id) do nothing",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(user.0)
    .bind(by.0)
    .bind(reason)
    .bind(now_ms())
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Lifts a ban; `true` when there was one.
pub(crate) async fn unban(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
) -> Result<bool, sqlx::Error> {
    untie(db, Tie::Ban, tenant, room, user).await
}

/// Deletes the user's uploads to the room (the user may no longer post
/// there); returns their ids, whose partial bytes are to be discarded.
pub(crate) async fn drop_uploads(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
) -> Result<Vec<String>, sqlx::Error> {
    on!(db, |e| sqlx::query_scalar(
        "delete from uploads where tenant_id = $1 and room_id = $2 and user_id = $3 returning id",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(user.0)
    .fetch_all(e)
    .await)
}

/// Deletes every upload to the room (it became read-only); returns their
/// ids.
pub(crate) async fn drop_room_uploads(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
) -> Result<Vec<String>, sqlx::Error> {
    on!(db, |e| sqlx::query_scalar(
        "delete from uploads where tenant_id = $1 and room_id = $2 returning id"
    )
    .bind(tenant.0)
    .bind(room.0)
    .fetch_all(e)
    .await)
}

/// The users invited to the room (and not yet members).
pub(crate) async fn invitees(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
) -> Result<Vec<UserId>, sqlx::Error> {
    let ids: Vec<i64> = on!(db, |e| sqlx::query_scalar(
        "select user_id from invitations where tenant_id = $1 and room_id = $2"
    )
    .bind(tenant.0)
    .bind(room.0)
    .fetch_all(e)
    .await)?;
    Ok(ids.into_iter().map(UserId).collect())
}

/// Sets `users.admin`; `true` when the user exists.
pub(crate) async fn set_admin(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    admin: bool,
) -> Result<bool, sqlx::Error> {
    let n =
        on!(db, |e| sqlx::query("update users set admin = $1 where tenant_id = $2 and id = $3")
            .bind(admin)
            .bind(tenant.0)
            .bind(user.0)
            .execute(e)
            .await
            .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The ids of the named users of the tenant that exist: `(id, name)`.
pub(crate) async fn user_ids(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    names: &[String],
) -> Result<Vec<(UserId, String)>, sqlx::Error> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "select id, name from users where tenant_id = $1 and name in ({})",
        numbered(2, names.len())
    );
    let rows: Vec<(i64, String)> = on!(db, |e| {
        let mut q = sqlx::query_as(AssertSqlSafe(sql)).persistent(false).bind(tenant.0);
        for n in names {
            q = q.bind(n);
        }
        q.fetch_all(e).await
    })?;
    Ok(rows.into_iter().map(|(id, name)| (UserId(id), name)).collect())
}

/// The members' names of each of these rooms (DM titles), by name.
pub(crate) async fn member_names(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    rooms: &[RoomId],
) -> Result<HashMap<RoomId, Vec<String>>, sqlx::Error> {
    let mut out: HashMap<RoomId, Vec<String>> = HashMap::new();
    for chunk in rooms.chunks(500) {
        let sql = format!(
            "select m.room_id, u.name from memberships m join users u on u.id = m.user_id
             where m.tenant_id = $1 and u.tenant_id = $1 and m.room_id in ({}) order by u.name",
            numbered(2, chunk.len())
        );
        let rows: Vec<(i64, String)> = on_conn!(conn, |e| {
            let mut q = sqlx::query_as(AssertSqlSafe(sql)).persistent(false).bind(tenant.0);
            for r in chunk {
                q = q.bind(r.0);
            }
            q.fetch_all(&mut *e).await?
        });
        for (room, name) in rows {
            out.entry(RoomId(room)).or_default().push(name);
        }
    }
    Ok(out)
}

/// The DM key of a set of members: their ids sorted, comma-separated.
pub(crate) fn dm_key(members: &[UserId]) -> String {
    let mut ids: Vec<i64> = members.iter().map(|u| u.0).collect();
    ids.sort_unstable();
    ids.dedup();
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}
