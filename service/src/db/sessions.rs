//! `sessions` table: only the SHA-256 of each token is stored.

use super::{Ex, TenantId, UserId, now_ms, on};

pub(crate) async fn create(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    token_hash: &[u8],
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    on!(db, |e| sqlx::query(
        "insert into sessions (token_hash, tenant_id, user_id, created_at, expires_at)
         values ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(tenant.0)
    .bind(user.0)
    .bind(now_ms())
    .bind(expires_at)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
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
