//! `qchatd backup --out FILE`: an online, consistent copy of the database.

use std::path::Path;

use super::{AdminError, open};
use crate::db;

/// Writes a consistent copy of the live database to `out` with SQLite's
/// `VACUUM INTO`: it reads inside one transaction, so the running server keeps
/// committing meanwhile and the copy is the database as of that moment. To
/// restore, stop the server and put the file in place as `DATA_DIR/qchat.db`
/// (removing any `qchat.db-wal` and `qchat.db-shm` left beside it).
///
/// # Errors
/// When `out` exists (never overwritten) or the copy fails.
pub async fn backup(data_dir: &Path, out: &Path) -> Result<(), AdminError> {
    if out.exists() {
        return Err(AdminError::Invalid(format!("{} exists; not overwriting it", out.display())));
    }
    if !data_dir.join(db::DB_FILE).exists() {
        return Err(AdminError::NotFound(format!("no database in {}", data_dir.display())));
    }
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| AdminError::Io(format!("creating {}: {e}", parent.display())))?;
    }
    let pool = open(data_dir).await?;
    let result = db::admin::vacuum_into(&pool, out).await;
    pool.close().await;
    result?;
    Ok(())
}
