//! `tenants` table.

use super::{DbError, Ex, TenantId, now_ms, on};

/// A tenant row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Tenant {
    pub(crate) id: TenantId,
    pub(crate) name: String,
    pub(crate) open_registration: bool,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    name: String,
    open_registration: bool,
}

impl From<Row> for Tenant {
    fn from(r: Row) -> Self {
        Self { id: TenantId(r.id), name: r.name, open_registration: r.open_registration }
    }
}

pub(crate) async fn create(
    db: impl Into<Ex<'_>>,
    name: &str,
    open_registration: bool,
) -> Result<TenantId, DbError> {
    let id: i64 = on!(db, |e| sqlx::query_scalar(
        "insert into tenants (name, open_registration, created_at) values ($1, $2, $3) returning id",
    )
    .bind(name)
    .bind(open_registration)
    .bind(now_ms())
    .fetch_one(e)
    .await)
    .map_err(DbError::from_insert)?;
    Ok(TenantId(id))
}

/// Locks the tenant's row until the caller's transaction ends (PostgreSQL;
/// a no-op on SQLite, whose write transactions exclude each other anyway):
/// what serializes creations that a per-tenant quota counts, across nodes.
pub(crate) async fn lock(db: impl Into<Ex<'_>>, tenant: TenantId) -> Result<(), sqlx::Error> {
    if let Ex::Pg(e) = db.into() {
        sqlx::query("select id from tenants where id = $1 for update")
            .bind(tenant.0)
            .fetch_optional(e)
            .await?;
    }
    Ok(())
}

pub(crate) async fn by_name(
    db: impl Into<Ex<'_>>,
    name: &str,
) -> Result<Option<Tenant>, sqlx::Error> {
    let row: Option<Row> = on!(db, |e| sqlx::query_as(
        "select id, name, open_registration from tenants where name = $1"
    )
    .bind(name)
    .fetch_optional(e)
    .await)?;
    Ok(row.map(Tenant::from))
}
