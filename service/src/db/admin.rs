//! Operator queries across tables: listings with counts, enable/disable,
//! deletes (rows of other tables go with them through `on delete cascade`),
//! session revocation and the online backup.

use std::path::Path;

use super::{Backend, Ex, RoomId, TenantId, UserId, on};

/// A tenant as `qchatd tenant list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct TenantRow {
    pub(crate) name: String,
    pub(crate) open_registration: bool,
    pub(crate) disabled: bool,
    pub(crate) users: i64,
    pub(crate) rooms: i64,
}

/// A user as `qchatd user list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct UserRow {
    pub(crate) name: String,
    pub(crate) disabled: bool,
    pub(crate) sessions: i64,
    pub(crate) admin: bool,
}

/// A room as `qchatd room list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct RoomRow {
    /// The name people know it by (a private room's title).
    pub(crate) name: String,
    pub(crate) handle: Option<String>,
    pub(crate) kind: String,
    pub(crate) disabled: bool,
    pub(crate) last_seq: i64,
    pub(crate) members: i64,
}

pub(crate) async fn tenants(db: impl Into<Ex<'_>>) -> Result<Vec<TenantRow>, sqlx::Error> {
    on!(db, |e| sqlx::query_as(
        "select t.name, t.open_registration, t.disabled,
                (select count(*) from users u where u.tenant_id = t.id) as users,
                (select count(*) from rooms r where r.tenant_id = t.id) as rooms
         from tenants t order by t.name",
    )
    .fetch_all(e)
    .await)
}

pub(crate) async fn users(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
) -> Result<Vec<UserRow>, sqlx::Error> {
    on!(db, |e| {
        sqlx::query_as(
        "select u.name, u.disabled, u.admin,
                (select count(*) from sessions s where s.tenant_id = u.tenant_id and s.user_id = u.id) as sessions
         from users u where u.tenant_id = $1 order by u.name",
    )
    .bind(tenant.0)
    .fetch_all(e)
    .await
    })
}

pub(crate) async fn rooms(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
) -> Result<Vec<RoomRow>, sqlx::Error> {
    on!(db, |e| {
        sqlx::query_as(
        "select coalesce(r.title, r.name) as name, r.handle, r.kind, r.disabled, r.last_seq,
                (select count(*) from memberships m where m.tenant_id = r.tenant_id and m.room_id = r.id) as members
         from rooms r where r.tenant_id = $1 order by coalesce(r.title, r.name), r.id",
    )
    .bind(tenant.0)
    .fetch_all(e)
    .await
    })
}

/// Sets `tenants.disabled`; `true` when the tenant exists.
pub(crate) async fn set_tenant_disabled(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    disabled: bool,
) -> Result<bool, sqlx::Error> {
    let n = on!(db, |e| sqlx::query("update tenants set disabled = $1 where id = $2")
        .bind(disabled)
        .bind(tenant.0)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Sets `users.disabled`; `true` when the user exists.
pub(crate) async fn set_user_disabled(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    disabled: bool,
) -> Result<bool, sqlx::Error> {
    let n = on!(db, |e| sqlx::query(
        "update users set disabled = $1 where tenant_id = $2 and id = $3"
    )
    .bind(disabled)
    .bind(tenant.0)
    .bind(user.0)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// The rooms (disabled ones too) an operator's NAME can mean: a room id
/// (`+` and hex), a public room's name, a private room's name; DMs only by
/// id. `(id, handle)` each.
pub(crate) async fn rooms_named(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    reference: &str,
) -> Result<Vec<(RoomId, String)>, sqlx::Error> {
    let rows: Vec<(i64, Option<String>)> = on!(db, |e| sqlx::query_as(
        "select id, handle from rooms where tenant_id = $1
           and (handle = $2 or (kind = 'public' and name = $2) or (kind = 'private' and title = $2))
         order by id",
    )
    .bind(tenant.0)
    .bind(reference)
    .fetch_all(e)
    .await)?;
    Ok(rows.into_iter().map(|(id, h)| (RoomId(id), h.unwrap_or_default())).collect())
}

/// Sets `rooms.disabled`; `true` when the room exists.
pub(crate) async fn set_room_disabled(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    disabled: bool,
) -> Result<bool, sqlx::Error> {
    let n = on!(db, |e| sqlx::query(
        "update rooms set disabled = $1 where tenant_id = $2 and id = $3"
    )
    .bind(disabled)
    .bind(tenant.0)
    .bind(room.0)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Replaces a user's password hash; `true` when the user exists.
pub(crate) async fn set_password_hash(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    hash: &str,
) -> Result<bool, sqlx::Error> {
    let n = on!(db, |e| sqlx::query(
        "update users set password_hash = $1 where tenant_id = $2 and id = $3"
    )
    .bind(hash)
    .bind(tenant.0)
    .bind(user.0)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Revokes the user's sessions (every user of the tenant when `user` is
/// `None`); returns how many.
pub(crate) async fn revoke_sessions(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: Option<UserId>,
) -> Result<u64, sqlx::Error> {
    on!(db, |e| sqlx::query(
        "delete from sessions where tenant_id = $1 and ($2 is null or user_id = $2)"
    )
    .bind(tenant.0)
    .bind(user.map(|u| u.0))
    .execute(e)
    .await
    .map(|r| r.rows_affected()))
}

pub(crate) async fn delete_tenant(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
) -> Result<bool, sqlx::Error> {
    let n = on!(db, |e| sqlx::query("delete from tenants where id = $1")
        .bind(tenant.0)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub(crate) async fn delete_user(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
) -> Result<bool, sqlx::Error> {
    let n = on!(db, |e| sqlx::query("delete from users where tenant_id = $1 and id = $2")
        .bind(tenant.0)
        .bind(user.0)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// `VACUUM INTO`: a consistent, compacted copy of the live SQLite database,
/// taken inside one read transaction, so writers keep going while it runs.
/// `false` on PostgreSQL, whose backups are the server's (`pg_dump`).
pub(crate) async fn vacuum_into(db: impl Into<Ex<'_>>, out: &Path) -> Result<bool, sqlx::Error> {
    let db: Ex<'_> = db.into();
    if db.backend() != Backend::Sqlite {
        return Ok(false);
    }
    let out = out.to_string_lossy().into_owned();
    on!(db, |e| sqlx::query("vacuum into $1")
        .bind(out)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(true)
}
