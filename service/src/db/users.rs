//! `users` table.

use super::{DbError, Ex, TenantId, UserId, now_ms, on};

/// A user row.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub(crate) id: UserId,
    pub(crate) name: String,
    pub(crate) password_hash: String,
    pub(crate) disabled: bool,
}

impl std::fmt::Debug for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    password_hash: String,
    disabled: bool,
}

impl From<Row> for User {
    fn from(r: Row) -> Self {
        Self {
            id: UserId(r.id),
            name: r.name,
            password_hash: r.password_hash,
            disabled: r.disabled,
        }
    }
}

pub(crate) async fn create(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    name: &str,
    password_hash: &str,
) -> Result<UserId, DbError> {
    let id: i64 = on!(db, |e| sqlx::query_scalar(
        "insert into users (tenant_id, name, password_hash, created_at) values ($1, $2, $3, $4)
         returning id",
    )
    .bind(tenant.0)
    .bind(name)
    .bind(password_hash)
    .bind(now_ms())
    .fetch_one(e)
    .await)
    .map_err(DbError::from_insert)?;
    Ok(UserId(id))
}

pub(crate) async fn by_name(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    name: &str,
) -> Result<Option<User>, sqlx::Error> {
    // A disabled tenant disables every user in it.
    let row: Option<Row> = on!(db, |e| sqlx::query_as(
        "select u.id, u.name, u.password_hash, (u.disabled or t.disabled) as disabled
         from users u join tenants t on t.id = u.tenant_id
         where u.tenant_id = $1 and u.name = $2",
    )
    .bind(tenant.0)
    .bind(name)
    .fetch_optional(e)
    .await)?;
    Ok(row.map(User::from))
}

/// The user's display name: `None` when there is no such user, `Some(None)`
/// when the user has none.
pub(crate) async fn display_name(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    name: &str,
) -> Result<Option<Option<String>>, sqlx::Error> {
    let row: Option<(Option<String>,)> = on!(db, |e| sqlx::query_as(
        "select display_name from users where tenant_id = $1 and name = $2",
    )
    .bind(tenant.0)
    .bind(name)
    .fetch_optional(e)
    .await)?;
    Ok(row.map(|(d,)| d))
}

/// Sets (or, with `None`, clears) the user's display name.
pub(crate) async fn set_display_name(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    display_name: Option<&str>,
) -> Result<(), sqlx::Error> {
    on!(db, |e| sqlx::query(
        "update users set display_name = $1 where tenant_id = $2 and id = $3"
    )
    .bind(display_name)
    .bind(tenant.0)
    .bind(user.0)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The user's password hash (`passwd` checks the old password with it).
pub(crate) async fn password_hash(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
) -> Result<Option<String>, sqlx::Error> {
    on!(db, |e| sqlx::query_scalar(
        "select password_hash from users where tenant_id = $1 and id = $2",
    )
    .bind(tenant.0)
    .bind(user.0)
    .fetch_optional(e)
    .await)
}

/// Replaces the user's password hash.
pub(crate) async fn set_password_hash(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    hash: &str,
) -> Result<(), sqlx::Error> {
    on!(db, |e| sqlx::query(
        "update users set password_hash = $1 where tenant_id = $2 and id = $3"
    )
    .bind(hash)
    .bind(tenant.0)
    .bind(user.0)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}
