//! `rooms` and `memberships` tables.

use futures_util::{Stream, TryStreamExt as _};
use qchat_protocol::RoomInfo;
use sqlx::SqliteExecutor;

use super::{DbError, RoomId, TenantId, UserId, now_ms};

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
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    name: &str,
) -> Result<Room, DbError> {
    let id: i64 = sqlx::query_scalar(
        "insert into rooms (tenant_id, name, created_at) values (?, ?, ?) returning id",
    )
    .bind(tenant.0)
    .bind(name)
    .bind(now_ms())
    .fetch_one(db)
    .await
    .map_err(DbError::from_insert)?;
    Ok(Room { id: RoomId(id), name: name.to_owned(), last_seq: 0 })
}

/// Creates a room on behalf of `creator`, who is then counted as its
/// creator for the per-user room quota.
pub(crate) async fn create_by(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    name: &str,
    creator: UserId,
) -> Result<Room, DbError> {
    let id: i64 = sqlx::query_scalar(
        "insert into rooms (tenant_id, name, created_at, created_by) values (?, ?, ?, ?)
         returning id",
    )
    .bind(tenant.0)
    .bind(name)
    .bind(now_ms())
    .bind(creator.0)
    .fetch_one(db)
    .await
    .map_err(DbError::from_insert)?;
    Ok(Room { id: RoomId(id), name: name.to_owned(), last_seq: 0 })
}

/// Rooms of the tenant that `user` created (disabled ones included).
pub(crate) async fn count_created_by(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    user: UserId,
) -> Result<u64, sqlx::Error> {
    let n: i64 =
        sqlx::query_scalar("select count(*) from rooms where tenant_id = ? and created_by = ?")
            .bind(tenant.0)
            .bind(user.0)
            .fetch_one(db)
            .await?;
    Ok(to_u64(n))
}

/// Rooms of the tenant, however made (disabled ones included).
pub(crate) async fn count(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
) -> Result<u64, sqlx::Error> {
    let n: i64 = sqlx::query_scalar("select count(*) from rooms where tenant_id = ?")
        .bind(tenant.0)
        .fetch_one(db)
        .await?;
    Ok(to_u64(n))
}

pub(crate) async fn by_name(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    name: &str,
) -> Result<Option<Room>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(
        "select id, name, last_seq from rooms where tenant_id = ? and name = ? and disabled = 0",
    )
    .bind(tenant.0)
    .bind(name)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Room::from))
}

/// A live room by name and the user's read marker in it (`None` when not a
/// member), in one query: the check every room-scoped request makes.
pub(crate) async fn with_membership(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    user: UserId,
    name: &str,
) -> Result<Option<(Room, Option<u64>)>, sqlx::Error> {
    let row: Option<(i64, String, i64, Option<i64>)> = sqlx::query_as(
        "select r.id, r.name, r.last_seq, m.read_seq from rooms r
         left join memberships m on m.room_id = r.id and m.tenant_id = r.tenant_id and m.user_id = ?
         where r.tenant_id = ? and r.name = ? and r.disabled = 0",
    )
    .bind(user.0)
    .bind(tenant.0)
    .bind(name)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(id, name, last, read)| {
        (Room { id: RoomId(id), name, last_seq: to_u64(last) }, read.map(to_u64))
    }))
}

/// Adds the membership; `true` when it is new.
pub(crate) async fn join(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "insert into memberships (tenant_id, room_id, user_id, read_seq, joined_at)
         select tenant_id, id, ?, 0, ? from rooms where tenant_id = ? and id = ?
         on conflict (room_id, user_id) do nothing",
    )
    .bind(user.0)
    .bind(now_ms())
    .bind(tenant.0)
    .bind(room.0)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Removes the membership; `true` when there was one.
pub(crate) async fn leave(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
) -> Result<bool, sqlx::Error> {
    let r =
        sqlx::query("delete from memberships where tenant_id = ? and room_id = ? and user_id = ?")
            .bind(tenant.0)
            .bind(room.0)
            .bind(user.0)
            .execute(db)
            .await?;
    Ok(r.rows_affected() == 1)
}

/// The user's read marker in the room, or `None` when not a member.
pub(crate) async fn membership(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
) -> Result<Option<u64>, sqlx::Error> {
    let read: Option<i64> = sqlx::query_scalar(
        "select read_seq from memberships where tenant_id = ? and room_id = ? and user_id = ?",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(user.0)
    .fetch_optional(db)
    .await?;
    Ok(read.map(to_u64))
}

/// Moves the read marker forward (never back, never past the room's end).
pub(crate) async fn set_read(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
    seq: u64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "update memberships set read_seq = max(read_seq, min(?, (select last_seq from rooms where id = ?)))
         where tenant_id = ? and room_id = ? and user_id = ?",
    )
    .bind(i64::try_from(seq).unwrap_or(i64::MAX))
    .bind(room.0)
    .bind(tenant.0)
    .bind(room.0)
    .bind(user.0)
    .execute(db)
    .await?;
    Ok(())
}

/// The tenant's rooms as seen by `user`, by name, from the first whose
/// name sorts after `after` (the `rooms` keyset; names are ASCII, so
/// SQLite's binary order is the client's order too).
pub(crate) fn list_for_user<'e>(
    db: impl SqliteExecutor<'e> + 'e,
    tenant: TenantId,
    user: UserId,
    after: Option<&str>,
) -> impl Stream<Item = Result<RoomInfo, sqlx::Error>> + 'e {
    sqlx::query_as::<_, (String, i64, Option<i64>)>(
        "select r.name, r.last_seq, m.read_seq from rooms r
         left join memberships m on m.room_id = r.id and m.user_id = ? and m.tenant_id = r.tenant_id
         where r.tenant_id = ? and r.disabled = 0 and r.name > ? order by r.name",
    )
    .bind(user.0)
    .bind(tenant.0)
    .bind(after.unwrap_or_default().to_owned())
    .fetch(db)
    .map_ok(|(name, last, read)| room_info(name, to_u64(last), read.map(to_u64)))
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
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    user: UserId,
) -> Result<Vec<(RoomId, String)>, sqlx::Error> {
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "select r.id, r.name from memberships m join rooms r on r.id = m.room_id
         where m.tenant_id = ? and m.user_id = ? and r.tenant_id = ?",
    )
    .bind(tenant.0)
    .bind(user.0)
    .bind(tenant.0)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(|(id, name)| (RoomId(id), name)).collect())
}

/// Members of a room, `(user id, name)` by name, from the first whose name
/// sorts after `after` (the `members` keyset).
pub(crate) fn members<'e>(
    db: impl SqliteExecutor<'e> + 'e,
    tenant: TenantId,
    room: RoomId,
    after: Option<&str>,
) -> impl Stream<Item = Result<(UserId, String), sqlx::Error>> + 'e {
    sqlx::query_as::<_, (i64, String)>(
        "select u.id, u.name from memberships m join users u on u.id = m.user_id
         where m.tenant_id = ? and m.room_id = ? and u.tenant_id = ? and u.name > ?
         order by u.name",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(tenant.0)
    .bind(after.unwrap_or_default().to_owned())
    .fetch(db)
    .map_ok(|(id, name)| (UserId(id), name))
}
