//! `qchatd migrate-to URL`: copies a SQLite deployment's database into an
//! empty PostgreSQL database, so that the same data directory (files,
//! certificate) can run on PostgreSQL from then on.

use super::AdminError;
use crate::db::copy::CopyError;
use crate::db::{self, DatabaseUrl, Db, Durability};

/// Rows copied from one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The table.
    pub table: String,
    /// How many rows.
    pub rows: u64,
}

/// Copies every row of the SQLite database `from` into the empty PostgreSQL
/// database `to` (both migrated to the current schema first), ids kept, in
/// one PostgreSQL transaction. The copy is the source as of its first read;
/// stop the server first so nothing written after it is left behind.
///
/// # Errors
/// [`AdminError::Invalid`] for the wrong kinds of URL, a target that is not
/// empty or a schema the copy does not know; database faults. On any error
/// nothing is committed to the target.
pub async fn migrate_to(from: &DatabaseUrl, to: &DatabaseUrl) -> Result<Vec<Copied>, AdminError> {
    let DatabaseUrl::Sqlite(file) = from else {
        return Err(AdminError::Invalid(
            "migrate-to copies a SQLite database (the data directory's, or --database-url \
             sqlite://PATH); this source is PostgreSQL"
                .into(),
        ));
    };
    if to.backend() != db::Backend::Postgres {
        return Err(AdminError::Invalid(
            "the target must be a PostgreSQL URL (postgres://USER@HOST:PORT/DB)".into(),
        ));
    }
    if !file.exists() {
        return Err(AdminError::NotFound(format!("no database at {}", file.display())));
    }
    let src = Db::open(from, Durability::Full).await?;
    let dst = Db::open(to, Durability::Full).await?;
    let result = match (&src, &dst) {
        (Db::Sqlite(s), Db::Postgres(p)) => db::copy::sqlite_to_postgres(s, p).await,
        _ => Ok(Vec::new()),
    };
    src.close().await;
    dst.close().await;
    match result {
        Ok(counts) => Ok(counts.into_iter().map(|(table, rows)| Copied { table, rows }).collect()),
        Err(CopyError::Sqlx(e)) => Err(AdminError::Db(e)),
        Err(e) => Err(AdminError::Invalid(e.to_string())),
    }
}
