//! `list`, `enable`/`disable`, `delete` for tenants, users and rooms, and
//! `user passwd`. Disabling a user or tenant, and resetting a password,
//! revoke the affected sessions so a stolen token stops working at once.

use super::{AdminError, check_name, hash_password, open, tenant, user};
use crate::db::DatabaseUrl;
use crate::db::admin as q;

/// A tenant in `qchatd tenant list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantRow {
    /// Name.
    pub name: String,
    /// Whether anyone may register.
    pub open_registration: bool,
    /// Whether log-ins are refused.
    pub disabled: bool,
    /// Number of users.
    pub users: u64,
    /// Number of rooms.
    pub rooms: u64,
}

/// A user in `qchatd user list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    /// Name.
    pub name: String,
    /// Whether log-ins are refused.
    pub disabled: bool,
    /// Live session tokens.
    pub sessions: u64,
    /// Whether the user is an admin of the tenant (owner rights in every
    /// public and private room, none in DMs).
    pub admin: bool,
}

/// A room in `qchatd room list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomRow {
    /// Name (a private room's too; DMs have none).
    pub name: String,
    /// Room id: `+` and 16 hex digits.
    pub id: String,
    /// `public`, `private` or `dm`.
    pub kind: String,
    /// Whether it is hidden and unusable.
    pub disabled: bool,
    /// Highest message seq.
    pub last_seq: u64,
    /// Number of members.
    pub members: u64,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Every tenant, by name.
///
/// # Errors
/// Database faults.
pub async fn list_tenants(db: &DatabaseUrl) -> Result<Vec<TenantRow>, AdminError> {
    let pool = open(db).await?;
    let rows = q::tenants(&pool).await?;
    pool.close().await;
    Ok(rows
        .into_iter()
        .map(|r| TenantRow {
            name: r.name,
            open_registration: r.open_registration,
            disabled: r.disabled,
            users: count(r.users),
            rooms: count(r.rooms),
        })
        .collect())
}

/// Every user of a tenant, by name.
///
/// # Errors
/// Unknown tenant; database faults.
pub async fn list_users(db: &DatabaseUrl, t: &str) -> Result<Vec<UserRow>, AdminError> {
    let pool = open(db).await?;
    let tenant = tenant(&pool, t).await?;
    let rows = q::users(&pool, tenant.id).await?;
    pool.close().await;
    Ok(rows
        .into_iter()
        .map(|r| UserRow {
            name: r.name,
            disabled: r.disabled,
            sessions: count(r.sessions),
            admin: r.admin,
        })
        .collect())
}

/// Every room of a tenant (disabled ones too), by name.
///
/// # Errors
/// Unknown tenant; database faults.
pub async fn list_rooms(db: &DatabaseUrl, t: &str) -> Result<Vec<RoomRow>, AdminError> {
    let pool = open(db).await?;
    let tenant = tenant(&pool, t).await?;
    let rows = q::rooms(&pool, tenant.id).await?;
    pool.close().await;
    Ok(rows
        .into_iter()
        .map(|r| RoomRow {
            name: if r.kind == "dm" { String::new() } else { r.name },
            id: r.handle.unwrap_or_default(),
            kind: r.kind,
            disabled: r.disabled,
            last_seq: count(r.last_seq),
            members: count(r.members),
        })
        .collect())
}

/// Disables (or re-enables) a tenant; disabling revokes all its sessions.
/// Returns the number of sessions revoked.
///
/// # Errors
/// Unknown tenant; database faults.
pub async fn set_tenant_disabled(
    db: &DatabaseUrl,
    t: &str,
    disabled: bool,
) -> Result<u64, AdminError> {
    let pool = open(db).await?;
    let tenant = tenant(&pool, t).await?;
    let mut tx = pool.begin().await?;
    q::set_tenant_disabled(&mut tx, tenant.id, disabled).await?;
    let revoked = if disabled { q::revoke_sessions(&mut tx, tenant.id, None).await? } else { 0 };
    tx.commit().await?;
    pool.close().await;
    Ok(revoked)
}

/// Disables (or re-enables) a user; disabling revokes their sessions.
/// Returns the number of sessions revoked.
///
/// # Errors
/// Unknown tenant or user; database faults.
pub async fn set_user_disabled(
    db: &DatabaseUrl,
    t: &str,
    u: &str,
    disabled: bool,
) -> Result<u64, AdminError> {
    let pool = open(db).await?;
    let tenant = tenant(&pool, t).await?;
    let id = user(&pool, &tenant, u).await?;
    let mut tx = pool.begin().await?;
    q::set_user_disabled(&mut tx, tenant.id, id, disabled).await?;
    let revoked =
        if disabled { q::revoke_sessions(&mut tx, tenant.id, Some(id)).await? } else { 0 };
    tx.commit().await?;
    pool.close().await;
    Ok(revoked)
}

/// Disables (or re-enables) a room.
///
/// # Errors
/// Unknown tenant or room; database faults.
pub async fn set_room_disabled(
    db: &DatabaseUrl,
    t: &str,
    room: &str,
    disabled: bool,
) -> Result<(), AdminError> {
    let pool = open(db).await?;
    let tenant = tenant(&pool, t).await?;
    let id = room_named(&pool, &tenant, room).await?;
    q::set_room_disabled(&pool, tenant.id, id, disabled).await?;
    pool.close().await;
    Ok(())
}

/// The one room an operator's NAME means (see [`q::rooms_named`]).
async fn room_named(
    pool: &crate::db::Db,
    tenant: &crate::db::Tenant,
    room: &str,
) -> Result<crate::db::RoomId, AdminError> {
    let found = q::rooms_named(pool, tenant.id, room).await?;
    match found.as_slice() {
        [] => Err(AdminError::NotFound(format!("no room named {room} in {}", tenant.name))),
        [(id, _)] => Ok(*id),
        several => {
            let ids: Vec<&str> = several.iter().map(|(_, h)| h.as_str()).collect();
            Err(AdminError::Conflict(format!(
                "several rooms are named {room} in {}: name one by its id ({})",
                tenant.name,
                ids.join(", ")
            )))
        }
    }
}

/// Makes a user an admin of their tenant, or not.
///
/// # Errors
/// Unknown tenant or user; database faults.
pub async fn set_admin(db: &DatabaseUrl, t: &str, u: &str, admin: bool) -> Result<(), AdminError> {
    let pool = open(db).await?;
    let tenant = tenant(&pool, t).await?;
    let id = user(&pool, &tenant, u).await?;
    crate::db::members::set_admin(&pool, tenant.id, id, admin).await?;
    pool.close().await;
    Ok(())
}

/// Sets a new password and revokes the user's sessions; returns how many.
///
/// # Errors
/// Unknown tenant or user; a password of the wrong length; database faults.
pub async fn set_password(
    db: &DatabaseUrl,
    t: &str,
    u: &str,
    password: &str,
) -> Result<u64, AdminError> {
    check_name("user", u)?;
    let hash = hash_password(password).await?;
    let pool = open(db).await?;
    let tenant = tenant(&pool, t).await?;
    let id = user(&pool, &tenant, u).await?;
    let mut tx = pool.begin().await?;
    q::set_password_hash(&mut tx, tenant.id, id, &hash).await?;
    let revoked = q::revoke_sessions(&mut tx, tenant.id, Some(id)).await?;
    tx.commit().await?;
    pool.close().await;
    Ok(revoked)
}

/// Deletes a tenant with all its users, rooms, messages and sessions.
///
/// # Errors
/// Unknown tenant; database faults.
pub async fn delete_tenant(db: &DatabaseUrl, t: &str) -> Result<(), AdminError> {
    let pool = open(db).await?;
    let tenant = tenant(&pool, t).await?;
    q::delete_tenant(&pool, tenant.id).await?;
    pool.close().await;
    Ok(())
}

/// Deletes a user, their sessions and memberships; their messages stay,
/// under the name they were sent with.
///
/// # Errors
/// Unknown tenant or user; database faults.
pub async fn delete_user(db: &DatabaseUrl, t: &str, u: &str) -> Result<(), AdminError> {
    let pool = open(db).await?;
    let tenant = tenant(&pool, t).await?;
    let id = user(&pool, &tenant, u).await?;
    q::delete_user(&pool, tenant.id, id).await?;
    pool.close().await;
    Ok(())
}

/// Deletes a room with its messages, memberships, invitations, bans,
/// uploads and the file rows no other room offers. Their content on disk
/// (and the uploads' partial bytes) is removed by the server's start-up
/// sweep: a running server may be storing the same content right now, and
/// only it can tell. Returns how many stored files became unreferenced.
///
/// # Errors
/// Unknown tenant or room; database faults.
pub async fn delete_room(db: &DatabaseUrl, t: &str, room: &str) -> Result<usize, AdminError> {
    let pool = open(db).await?;
    let tenant = tenant(&pool, t).await?;
    let id = room_named(&pool, &tenant, room).await?;
    let mut tx = pool.begin_write().await?;
    let deleted = crate::db::rooms::delete(tx.conn(), tenant.id, id).await?;
    tx.commit().await?;
    pool.close().await;
    Ok(deleted.unreferenced.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;

    #[tokio::test]
    async fn disable_revokes_and_lists_show_it() {
        for test_db in db::testing::each().await {
            disable_revokes_and_lists_show_it_on(&test_db.url).await;
        }
    }

    async fn disable_revokes_and_lists_show_it_on(d: &DatabaseUrl) {
        super::super::create_tenant(d, "acme", false).await.expect("tenant");
        super::super::create_user(d, "acme", "ann", "correct horse", false).await.expect("user");
        super::super::create_room(d, "acme", "general", false, None).await.expect("room");
        let pool = open(d).await.expect("open");
        let t = tenant(&pool, "acme").await.expect("acme");
        let ann = user(&pool, &t, "ann").await.expect("ann");
        db::sessions::create(
            &pool,
            t.id,
            ann,
            b"hash",
            i64::MAX,
            db::sessions::Origin { client: "", address: "" },
        )
        .await
        .expect("session");
        pool.close().await;

        assert_eq!(list_users(d, "acme").await.expect("users")[0].sessions, 1);
        assert!(!list_users(d, "acme").await.expect("users")[0].admin);
        set_admin(d, "acme", "ann", true).await.expect("admin");
        assert!(list_users(d, "acme").await.expect("users")[0].admin);
        // A private room with an owner, named by its name or its id.
        super::super::create_room(d, "acme", "plans", true, Some("ann")).await.expect("private");
        let rooms = list_rooms(d, "acme").await.expect("rooms");
        let plans = rooms.iter().find(|r| r.name == "plans").expect("listed");
        assert_eq!((plans.kind.as_str(), plans.members), ("private", 1));
        set_room_disabled(d, "acme", &plans.id, true).await.expect("by id");
        delete_room(d, "acme", "plans").await.expect("by name");
        assert_eq!(set_user_disabled(d, "acme", "ann", true).await.expect("disable"), 1);
        let users = list_users(d, "acme").await.expect("users");
        assert!(users[0].disabled);
        assert_eq!(users[0].sessions, 0);

        set_room_disabled(d, "acme", "general", true).await.expect("room off");
        assert!(list_rooms(d, "acme").await.expect("rooms")[0].disabled);
        set_tenant_disabled(d, "acme", true).await.expect("tenant off");
        let tenants = list_tenants(d).await.expect("tenants");
        assert_eq!((tenants[0].disabled, tenants[0].users, tenants[0].rooms), (true, 1, 1));

        delete_room(d, "acme", "general").await.expect("delete room");
        assert!(matches!(delete_room(d, "acme", "general").await, Err(AdminError::NotFound(_))));
        delete_user(d, "acme", "ann").await.expect("delete user");
        delete_tenant(d, "acme").await.expect("delete tenant");
        assert!(list_tenants(d).await.expect("tenants").is_empty());
    }
}
