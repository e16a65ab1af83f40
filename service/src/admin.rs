//! Operator commands that work on the database directly (`qchatd tenant`,
//! `user`, `room`, `migrate`, `backup`), on SQLite or PostgreSQL, whichever
//! the database URL names. Safe while the server runs: the database
//! serialises the writes, and a running server sees them on its next query
//! (a disabled user cannot log in or resume; revoked sessions are gone).
//!
//! - this file: creation and the shared helpers;
//! - `manage`: list, enable/disable, delete, password reset;
//! - `backup`: the online backup.

mod backup;
mod copy;
mod manage;

pub use backup::backup;
pub use copy::{Copied, migrate_to};
pub use manage::{
    RoomRow, TenantRow, UserRow, delete_room, delete_tenant, delete_user, list_rooms, list_tenants,
    list_users, set_admin, set_password, set_room_disabled, set_tenant_disabled, set_user_disabled,
};

use qchat_protocol::{MAX_PASSWORD_LEN, MIN_PASSWORD_LEN, Role, RoomKind, valid_name};

use crate::auth::Auth;
use crate::db::{self, DatabaseUrl, Db, DbError, Durability};

/// Why an admin command failed; the message is shown to the operator.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// The named thing does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The thing to create exists already.
    #[error("{0}")]
    Conflict(String),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// Database fault.
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    /// File system fault.
    #[error("{0}")]
    Io(String),
}

fn check_name(what: &str, n: &str) -> Result<(), AdminError> {
    if valid_name(n) {
        Ok(())
    } else {
        Err(AdminError::Invalid(format!(
            "invalid {what} name {n:?}: use 1-64 letters, digits, '-', '_' or '.'"
        )))
    }
}

fn conflict(e: DbError, what: String) -> AdminError {
    match e {
        DbError::Conflict => AdminError::Conflict(what),
        DbError::Sqlx(e) => AdminError::Db(e),
    }
}

/// Checks the length and hashes with argon2id.
async fn hash_password(password: &str) -> Result<String, AdminError> {
    if password.len() < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(AdminError::Invalid(format!(
            "password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} bytes"
        )));
    }
    let auth = Auth::new().map_err(|e| AdminError::Invalid(e.to_string()))?;
    auth.hash(password).await.map_err(|e| AdminError::Invalid(e.to_string()))
}

async fn user(pool: &Db, tenant: &db::Tenant, u: &str) -> Result<db::UserId, AdminError> {
    db::users::by_name(pool, tenant.id, u)
        .await?
        .map(|user| user.id)
        .ok_or_else(|| AdminError::NotFound(format!("no user named {u} in {}", tenant.name)))
}

async fn tenant(pool: &Db, t: &str) -> Result<db::Tenant, AdminError> {
    db::tenants::by_name(pool, t)
        .await?
        .ok_or_else(|| AdminError::NotFound(format!("no tenant named {t}")))
}

/// Creates a tenant.
///
/// # Errors
/// [`AdminError`] for an invalid or existing name.
pub async fn create_tenant(
    db: &DatabaseUrl,
    t: &str,
    open_registration: bool,
) -> Result<(), AdminError> {
    check_name("tenant", t)?;
    let pool = open(db).await?;
    db::tenants::create(&pool, t, open_registration)
        .await
        .map_err(|e| conflict(e, format!("tenant {t} exists")))?;
    pool.close().await;
    Ok(())
}

/// Creates a user with an argon2id-hashed password.
///
/// # Errors
/// [`AdminError`] for an unknown tenant, an invalid or existing name, or a
/// password of the wrong length.
pub async fn create_user(
    db: &DatabaseUrl,
    t: &str,
    user: &str,
    password: &str,
    admin: bool,
) -> Result<(), AdminError> {
    check_name("user", user)?;
    if password.len() < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(AdminError::Invalid(format!(
            "password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} bytes"
        )));
    }
    let pool = open(db).await?;
    let tenant = tenant(&pool, t).await?;
    let auth = Auth::new().map_err(|e| AdminError::Invalid(e.to_string()))?;
    let hash = auth.hash(password).await.map_err(|e| AdminError::Invalid(e.to_string()))?;
    let id = db::users::create(&pool, tenant.id, user, &hash)
        .await
        .map_err(|e| conflict(e, format!("user {user} exists in {t}")))?;
    if admin {
        db::members::set_admin(&pool, tenant.id, id, true).await?;
    }
    pool.close().await;
    Ok(())
}

/// Creates a room: public (with no members; users join it), or private,
/// with `owner` as its owner and only member (without one, only the
/// tenant's admins see it until they invite someone). Returns its id.
///
/// # Errors
/// [`AdminError`] for an unknown tenant or owner, or an invalid or existing
/// (public) name.
pub async fn create_room(
    db: &DatabaseUrl,
    t: &str,
    room: &str,
    private: bool,
    owner: Option<&str>,
) -> Result<String, AdminError> {
    check_name("room", room)?;
    let pool = open(db).await?;
    let tenant = tenant(&pool, t).await?;
    let owner = match owner {
        Some(u) => Some(user(&pool, &tenant, u).await?),
        None => None,
    };
    let kind = if private { RoomKind::Private } else { RoomKind::Public };
    let mut tx = pool.begin_write().await?;
    let created = db::rooms::create(&mut tx, tenant.id, room, kind, None)
        .await
        .map_err(|e| conflict(e, format!("room {room} exists in {t}")))?;
    if let Some(owner) = owner {
        db::rooms::join(tx.conn(), tenant.id, created.id, owner, Role::Owner).await?;
    }
    tx.commit().await?;
    pool.close().await;
    Ok(created.handle)
}

/// Creates the database (a SQLite file and its directory) if needed and
/// migrates it: SQLite or PostgreSQL, whichever `db` names.
///
/// # Errors
/// When the directory or database cannot be created or migrated.
pub async fn migrate(db: &DatabaseUrl) -> Result<(), AdminError> {
    open(db).await?.close().await;
    Ok(())
}

async fn open(url: &DatabaseUrl) -> Result<Db, AdminError> {
    if let DatabaseUrl::Sqlite(path) = url
        && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir)
            .map_err(|e| AdminError::Invalid(format!("creating {}: {e}", dir.display())))?;
    }
    Ok(Db::open(url, Durability::Full).await?)
}
