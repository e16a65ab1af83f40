//! `qchatd backup --out FILE`: an online, consistent copy of the database.

use std::path::Path;

use super::{AdminError, open};
use crate::db::{self, DatabaseUrl};

/// Writes a consistent copy of the live database to `out` with SQLite's
/// `VACUUM INTO`: it reads inside one transaction, so the running server keeps
/// committing meanwhile and the copy is the database as of that moment. To
/// restore, stop the server and put the file in place as `DATA_DIR/qchat.db`
/// (removing any `qchat.db-wal` and `qchat.db-shm` left beside it).
///
/// # Errors
/// When `out` exists (never overwritten) or the copy fails.
pub async fn backup(db: &DatabaseUrl, out: &Path) -> Result<(), AdminError> {
    if out.exists() {
        return Err(AdminError::Invalid(format!("{} exists; not overwriting it", out.display())));
    }
    let file = match db {
        DatabaseUrl::Sqlite(file) => file,
        DatabaseUrl::Postgres(_) => {
            return Err(AdminError::Invalid(
                "backup copies a SQLite database; back PostgreSQL up with pg_dump \
                 (docs/OPERATIONS.md)"
                    .into(),
            ));
        }
    };
    if !file.exists() {
        return Err(AdminError::NotFound(format!("no database at {}", file.display())));
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| AdminError::Io(format!("creating {}: {e}", parent.display())))?;
    }
    let pool = open(db).await?;
    let result = db::admin::vacuum_into(&pool, out).await.map(drop);
    pool.close().await;
    result?;
    Ok(())
}
