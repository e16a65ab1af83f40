//! `tenants` table.

use sqlx::SqliteExecutor;

use super::{DbError, TenantId, now_ms};

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
    db: impl SqliteExecutor<'_>,
    name: &str,
    open_registration: bool,
) -> Result<TenantId, DbError> {
    let id: i64 = sqlx::query_scalar(
        "insert into tenants (name, open_registration, created_at) values (?, ?, ?) returning id",
    )
    .bind(name)
    .bind(open_registration)
    .bind(now_ms())
    .fetch_one(db)
    .await
    .map_err(DbError::from_insert)?;
    Ok(TenantId(id))
}

pub(crate) async fn by_name(
    db: impl SqliteExecutor<'_>,
    name: &str,
) -> Result<Option<Tenant>, sqlx::Error> {
    let row: Option<Row> =
        sqlx::query_as("select id, name, open_registration from tenants where name = ?")
            .bind(name)
            .fetch_optional(db)
            .await?;
    Ok(row.map(Tenant::from))
}
