//! `rooms` and `memberships` tables.

use futures_util::stream::BoxStream;
use futures_util::{StreamExt as _, TryStreamExt as _};
use qchat_protocol::RoomInfo;

use super::{DbError, Ex, RoomId, TenantId, UserId, now_ms, on};

/// A room row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Room {
    pub(crate) id: RoomId,
    pub(crate) name: String,
    pub(crate) last_seq: u64,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    last_seq: i64,
}

impl From<Row> for Room {
    fn from(r: Row) -> Self {
        Self { id: RoomId(r.id), name: r.name, last_seq: to_u64(r.last_seq) }
    }
}

pub(crate) fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) async fn create(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    name: &str,
) -> Result<Room, DbError> {
    let id: i64 = on!(db, |e| sqlx::query_scalar(
        "insert into rooms (tenant_id, name, created_at) values ($1, $2, $3) returning id",
    )
    .bind(tenant.0)
    .bind(name)
    .bind(now_ms())
    .fetch_one(e)
    .await)
    .map_err(DbError::from_insert)?;
    Ok(Room { id: RoomId(id), name: name.to_owned(), last_seq: 0 })
}

/// Creates a room on behalf of `creator`, who is then counted as its
/// creator for the per-user room quota.
pub(crate) async fn create_by(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    name: &str,
    creator: UserId,
) -> Result<Room, DbError> {
    let id: i64 = on!(db, |e| sqlx::query_scalar(
        "insert into rooms (tenant_id, name, created_at, created_by) values ($1, $2, $3, $4)
         returning id",
    )
    .bind(tenant.0)
    .bind(name)
    .bind(now_ms())
    .bind(creator.0)
    .fetch_one(e)
    .await)
    .map_err(DbError::from_insert)?;
    Ok(Room { id: RoomId(id), name: name.to_owned(), last_seq: 0 })
}

/// Rooms of the tenant that `user` created (disabled ones included).
pub(crate) async fn count_created_by(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
) -> Result<u64, sqlx::Error> {
    let n: i64 = on!(db, |e| sqlx::query_scalar(
        "select count(*) from rooms where tenant_id = $1 and created_by = $2"
    )
    .bind(tenant.0)
    .bind(user.0)
    .fetch_one(e)
    .await)?;
    Ok(to_u64(n))
}

/// Rooms of the tenant, however made (disabled ones included).
pub(crate) async fn count(db: impl Into<Ex<'_>>, tenant: TenantId) -> Result<u64, sqlx::Error> {
    let n: i64 =
        on!(db, |e| sqlx::query_scalar("select count(*) from rooms where tenant_id = $1")
            .bind(tenant.0)
            .fetch_one(e)
            .await)?;
    Ok(to_u64(n))
}

pub(crate) async fn by_name(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    name: &str,
) -> Result<Option<Room>, sqlx::Error> {
    let row: Option<Row> = on!(db, |e| {
        sqlx::query_as(
        "select id, name, last_seq from rooms where tenant_id = $1 and name = $2 and not disabled",
    )
    .bind(tenant.0)
    .bind(name)
    .fetch_optional(e)
    .await
    })?;
    Ok(row.map(Room::from))
}

/// A live room by name and the user's read marker in it (`None` when not a
/// member), in one query: the check every room-scoped request makes.
pub(crate) async fn with_membership(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    name: &str,
) -> Result<Option<(Room, Option<u64>)>, sqlx::Error> {
    let row: Option<(i64, String, i64, Option<i64>)> = on!(db, |e| {
        sqlx::query_as(
        "select r.id, r.name, r.last_seq, m.read_seq from rooms r
         left join memberships m on m.room_id = r.id and m.tenant_id = r.tenant_id and m.user_id = $1
         where r.tenant_id = $2 and r.name = $3 and not r.disabled",
    )
    .bind(user.0)
    .bind(tenant.0)
    .bind(name)
    .fetch_optional(e)
    .await
    })?;
    Ok(row.map(|(id, name, last, read)| {
        (Room { id: RoomId(id), name, last_seq: to_u64(last) }, read.map(to_u64))
    }))
}

/// Adds the membership; `true` when it is new.
pub(crate) async fn join(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
) -> Result<bool, sqlx::Error> {
    let n = on!(db, |e| sqlx::query(
        "insert into memberships (tenant_id, room_id, user_id, read_seq, joined_at)
         select tenant_id, id, $1, 0, $2 from rooms where tenant_id = $3 and id = $4
         on conflict (room_id, user_id) do nothing",
    )
    .bind(user.0)
    .bind(now_ms())
    .bind(tenant.0)
    .bind(room.0)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Removes the membership; `true` when there was one.
pub(crate) async fn leave(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
) -> Result<bool, sqlx::Error> {
    let n = on!(db, |e| sqlx::query(
        "delete from memberships where tenant_id = $1 and room_id = $2 and user_id = $3"
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(user.0)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The user's read marker in the room, or `None` when not a member.
pub(crate) async fn membership(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
) -> Result<Option<u64>, sqlx::Error> {
    let read: Option<i64> = on!(db, |e| {
        sqlx::query_scalar(
        "select read_seq from memberships where tenant_id = $1 and room_id = $2 and user_id = $3",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(user.0)
    .fetch_optional(e)
    .await
    })?;
    Ok(read.map(to_u64))
}

/// Moves the read marker forward (never back, never past the room's end).
pub(crate) async fn set_read(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
    seq: u64,
) -> Result<(), sqlx::Error> {
    let db = db.into();
    // SQLite's two-argument max/min are PostgreSQL's greatest/least.
    let sql = db.pick(
        "update memberships set read_seq = max(read_seq, min($1, (select last_seq from rooms where id = $2)))
         where tenant_id = $3 and room_id = $2 and user_id = $4",
        "update memberships set read_seq = greatest(read_seq, least($1, (select last_seq from rooms where id = $2)))
         where tenant_id = $3 and room_id = $2 and user_id = $4",
    );
    on!(db, |e| sqlx::query(sql)
        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
        .bind(room.0)
        .bind(tenant.0)
        .bind(user.0)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The tenant's rooms as seen by `user`, by name, from the first whose
/// name sorts after `after` (the `rooms` keyset; names are ASCII, so
/// SQLite's binary order, and PostgreSQL's `C` collation that the names
/// have there, is the client's order too).
pub(crate) fn list_for_user<'e>(
    db: impl Into<Ex<'e>>,
    tenant: TenantId,
    user: UserId,
    after: Option<&str>,
) -> BoxStream<'e, Result<RoomInfo, sqlx::Error>> {
    let after = after.unwrap_or_default().to_owned();
    on!(db, |e| {
        sqlx::query_as::<_, (String, i64, Option<i64>)>(
        "select r.name, r.last_seq, m.read_seq from rooms r
         left join memberships m on m.room_id = r.id and m.user_id = $1 and m.tenant_id = r.tenant_id
         where r.tenant_id = $2 and not r.disabled and r.name > $3 order by r.name",
    )
    .bind(user.0)
    .bind(tenant.0)
    .bind(after)
    .fetch(e)
    .map_ok(|(name, last, read)| room_info(name, to_u64(last), read.map(to_u64)))
    .boxed()
    })
}

/// Builds the wire view of a room for a caller with read marker `read`
/// (`None` = not a member).
pub(crate) fn room_info(name: String, last_seq: u64, read: Option<u64>) -> RoomInfo {
    RoomInfo {
        name,
        joined: read.is_some(),
        last_seq,
        read_seq: read.unwrap_or(0),
        unread: read.map_or(0, |r| last_seq.saturating_sub(r)),
    }
}

/// The rooms `user` is a member of.
pub(crate) async fn user_rooms(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
) -> Result<Vec<(RoomId, String)>, sqlx::Error> {
    let rows: Vec<(i64, String)> = on!(db, |e| sqlx::query_as(
        "select r.id, r.name from memberships m join rooms r on r.id = m.room_id
         where m.tenant_id = $1 and m.user_id = $2 and r.tenant_id = $1",
    )
    .bind(tenant.0)
    .bind(user.0)
    .fetch_all(e)
    .await)?;
    Ok(rows.into_iter().map(|(id, name)| (RoomId(id), name)).collect())
}

/// Members of a room, `(user id, name)` by name, from the first whose name
/// sorts after `after` (the `members` keyset).
pub(crate) fn members<'e>(
    db: impl Into<Ex<'e>>,
    tenant: TenantId,
    room: RoomId,
    after: Option<&str>,
) -> BoxStream<'e, Result<(UserId, String), sqlx::Error>> {
    let after = after.unwrap_or_default().to_owned();
    on!(db, |e| sqlx::query_as::<_, (i64, String)>(
        "select u.id, u.name from memberships m join users u on u.id = m.user_id
         where m.tenant_id = $1 and m.room_id = $2 and u.tenant_id = $1 and u.name > $3
         order by u.name",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(after)
    .fetch(e)
    .map_ok(|(id, name)| (UserId(id), name))
    .boxed())
}
