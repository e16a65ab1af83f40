//! Operator queries across tables: listings with counts, enable/disable,
//! deletes (rows of other tables go with them through `on delete cascade`),
//! session revocation and the online backup.

use std::path::Path;

use sqlx::SqliteExecutor;

use super::{TenantId, UserId};

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
}

/// A room as `qchatd room list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub(crate) struct RoomRow {
    pub(crate) name: String,
    pub(crate) disabled: bool,
    pub(crate) last_seq: i64,
    pub(crate) members: i64,
}

pub(crate) async fn tenants(db: impl SqliteExecutor<'_>) -> Result<Vec<TenantRow>, sqlx::Error> {
    sqlx::query_as(
        "select t.name, t.open_registration, t.disabled,
                (select count(*) from users u where u.tenant_id = t.id) as users,
                (select count(*) from rooms r where r.tenant_id = t.id) as rooms
         from tenants t order by t.name",
    )
    .fetch_all(db)
    .await
}

pub(crate) async fn users(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
) -> Result<Vec<UserRow>, sqlx::Error> {
    sqlx::query_as(
        "select u.name, u.disabled,
                (select count(*) from sessions s where s.tenant_id = u.tenant_id and s.user_id = u.id) as sessions
         from users u where u.tenant_id = ? order by u.name",
    )
    .bind(tenant.0)
    .fetch_all(db)
    .await
}

pub(crate) async fn rooms(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
) -> Result<Vec<RoomRow>, sqlx::Error> {
    sqlx::query_as(
        "select r.name, r.disabled, r.last_seq,
                (select count(*) from memberships m where m.tenant_id = r.tenant_id and m.room_id = r.id) as members
         from rooms r where r.tenant_id = ? order by r.name",
    )
    .bind(tenant.0)
    .fetch_all(db)
    .await
}

/// Sets `tenants.disabled`; `true` when the tenant exists.
pub(crate) async fn set_tenant_disabled(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    disabled: bool,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("update tenants set disabled = ? where id = ?")
        .bind(disabled)
        .bind(tenant.0)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Sets `users.disabled`; `true` when the user exists.
pub(crate) async fn set_user_disabled(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    user: UserId,
    disabled: bool,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("update users set disabled = ? where tenant_id = ? and id = ?")
        .bind(disabled)
        .bind(tenant.0)
        .bind(user.0)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Sets `rooms.disabled` by name; `true` when the room exists.
pub(crate) async fn set_room_disabled(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    room: &str,
    disabled: bool,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("update rooms set disabled = ? where tenant_id = ? and name = ?")
        .bind(disabled)
        .bind(tenant.0)
        .bind(room)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Replaces a user's password hash; `true` when the user exists.
pub(crate) async fn set_password_hash(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    user: UserId,
    hash: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("update users set password_hash = ? where tenant_id = ? and id = ?")
        .bind(hash)
        .bind(tenant.0)
        .bind(user.0)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Revokes the user's sessions (every user of the tenant when `user` is
/// `None`); returns how many.
pub(crate) async fn revoke_sessions(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    user: Option<UserId>,
) -> Result<u64, sqlx::Error> {
    let r = sqlx::query("delete from sessions where tenant_id = ? and (? is null or user_id = ?)")
        .bind(tenant.0)
        .bind(user.map(|u| u.0))
        .bind(user.map(|u| u.0))
        .execute(db)
        .await?;
    Ok(r.rows_affected())
}

pub(crate) async fn delete_tenant(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("delete from tenants where id = ?").bind(tenant.0).execute(db).await?;
    Ok(r.rows_affected() == 1)
}

pub(crate) async fn delete_user(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    user: UserId,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("delete from users where tenant_id = ? and id = ?")
        .bind(tenant.0)
        .bind(user.0)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub(crate) async fn delete_room(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    room: &str,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("delete from rooms where tenant_id = ? and name = ?")
        .bind(tenant.0)
        .bind(room)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// `VACUUM INTO`: a consistent, compacted copy of the live database, taken
/// inside one read transaction, so writers keep going while it runs.
pub(crate) async fn vacuum_into(
    db: impl SqliteExecutor<'_>,
    out: &Path,
) -> Result<(), sqlx::Error> {
    let out = out.to_string_lossy().into_owned();
    sqlx::query("vacuum into ?").bind(out).execute(db).await?;
    Ok(())
}
