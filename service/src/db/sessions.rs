//! `sessions` table: only the SHA-256 of each token is stored. A session's
//! public id (what `sessions` shows and `session.revoke` takes) is the first
//! 8 bytes of that hash in hex: it says nothing about the token.

use futures_util::stream::BoxStream;

use super::{Ex, TenantId, UserId, now_ms, on};

/// The public id of the session whose token hashes to `token_hash`.
pub(crate) fn public_id(token_hash: &[u8]) -> String {
    token_hash.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// Where and with what a session logged in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    /// The client's name (may be empty).
    pub(crate) client: &'a str,
    /// The peer's IP address.
    pub(crate) address: &'a str,
}

pub(crate) async fn create(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    token_hash: &[u8],
    expires_at: i64,
    origin: Origin<'_>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    on!(db, |e| sqlx::query(
        "insert into sessions (token_hash, tenant_id, user_id, created_at, expires_at,
                               public_id, client, address, last_seen)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $4)",
    )
    .bind(token_hash)
    .bind(tenant.0)
    .bind(user.0)
    .bind(now)
    .bind(expires_at)
    .bind(public_id(token_hash))
    .bind(origin.client)
    .bind(origin.address)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Records that the session was used now, by a resume from `origin` (an
/// empty client name keeps the one recorded). Not at the end of each
/// connection: a storm of disconnects would be as many writes.
pub(crate) async fn touch(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    token_hash: &[u8],
    origin: Origin<'_>,
) -> Result<(), sqlx::Error> {
    let client = Some(origin.client).filter(|c| !c.is_empty());
    let address = origin.address;
    on!(db, |e| sqlx::query(
        "update sessions set last_seen = $1, client = coalesce($2, client),
                address = coalesce($3, address)
         where tenant_id = $4 and token_hash = $5",
    )
    .bind(now_ms())
    .bind(client)
    .bind(address)
    .bind(tenant.0)
    .bind(token_hash)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// One of a user's sessions.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct SessionRow {
    pub(crate) token_hash: Vec<u8>,
    pub(crate) public_id: String,
    pub(crate) client: String,
    pub(crate) address: String,
    pub(crate) created_at: i64,
    pub(crate) last_seen: i64,
}

/// The user's unexpired sessions by public id, from the first after
/// `after` (the `sessions` keyset).
pub(crate) fn of_user<'e>(
    db: impl Into<Ex<'e>>,
    tenant: TenantId,
    user: UserId,
    after: Option<&str>,
) -> BoxStream<'e, Result<SessionRow, sqlx::Error>> {
    let after = after.unwrap_or_default().to_owned();
    on!(db, |e| sqlx::query_as::<_, SessionRow>(
        "select token_hash, public_id, client, address, created_at, last_seen from sessions
         where tenant_id = $1 and user_id = $2 and public_id > $3 and expires_at > $4
         order by public_id",
    )
    .bind(tenant.0)
    .bind(user.0)
    .bind(after)
    .bind(now_ms())
    .fetch(e))
}

/// Deletes the user's session with this public id; returns its token hash,
/// `None` when the user has no such session.
pub(crate) async fn revoke(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    public_id: &str,
) -> Result<Option<Vec<u8>>, sqlx::Error> {
    on!(db, |e| sqlx::query_scalar(
        "delete from sessions where tenant_id = $1 and user_id = $2 and public_id = $3
         returning token_hash",
    )
    .bind(tenant.0)
    .bind(user.0)
    .bind(public_id)
    .fetch_optional(e)
    .await)
}

/// Deletes every session of the user but `keep`; returns their token
/// hashes.
pub(crate) async fn revoke_others(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    keep: &[u8],
) -> Result<Vec<Vec<u8>>, sqlx::Error> {
    on!(db, |e| sqlx::query_scalar(
        "delete from sessions where tenant_id = $1 and user_id = $2 and token_hash <> $3
         returning token_hash",
    )
    .bind(tenant.0)
    .bind(user.0)
    .bind(keep)
    .fetch_all(e)
    .await)
}

/// Who a live session belongs to.
#[derive(Debug, Clone)]
pub(crate) struct SessionOwner {
    pub(crate) tenant: TenantId,
    pub(crate) tenant_name: String,
    pub(crate) user: UserId,
    pub(crate) user_name: String,
    pub(crate) disabled: bool,
}

/// The owner of the unexpired session with this token hash.
pub(crate) async fn lookup(
    db: impl Into<Ex<'_>>,
    token_hash: &[u8],
) -> Result<Option<SessionOwner>, sqlx::Error> {
    let row: Option<(i64, String, i64, String, bool)> = on!(db, |e| sqlx::query_as(
        "select t.id, t.name, u.id, u.name, (u.disabled or t.disabled) from sessions s
         join users u on u.id = s.user_id and u.tenant_id = s.tenant_id
         join tenants t on t.id = s.tenant_id
         where s.token_hash = $1 and s.expires_at > $2",
    )
    .bind(token_hash)
    .bind(now_ms())
    .fetch_optional(e)
    .await)?;
    Ok(row.map(|(t, tn, u, un, disabled)| SessionOwner {
        tenant: TenantId(t),
        tenant_name: tn,
        user: UserId(u),
        user_name: un,
        disabled,
    }))
}

pub(crate) async fn delete(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    token_hash: &[u8],
) -> Result<(), sqlx::Error> {
    on!(db, |e| sqlx::query("delete from sessions where tenant_id = $1 and token_hash = $2")
        .bind(tenant.0)
        .bind(token_hash)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

pub(crate) async fn delete_expired(db: impl Into<Ex<'_>>) -> Result<u64, sqlx::Error> {
    let r = on!(db, |e| sqlx::query("delete from sessions where expires_at <= $1")
        .bind(now_ms())
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(r)
}
