//! SQLite storage. All SQL lives in this module's children; the rest of the
//! service sees sqlx-free domain types and functions that take the tenant first.
//!
//! Functions take `impl SqliteExecutor<'_>` so a caller can run them on the
//! pool or inside a transaction. Each has one name, its table's module and
//! its own: `db::rooms::join`, `db::files::usage`, `db::messages::before`;
//! the domain types they take and return are re-exported here (`db::Room`).

pub(crate) mod files;
pub(crate) mod messages;
pub(crate) mod rooms;
pub(crate) mod sessions;
pub(crate) mod tenants;
pub(crate) mod users;

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

pub(crate) use files::{Content, FileAccess, NewUpload, Upload};
pub(crate) use messages::{AppendOutcome, FileAttach, NewMessage};
pub use messages::{HISTORY_SQL, INSERT_MESSAGE_SQL};
pub(crate) use rooms::Room;
pub(crate) use tenants::Tenant;

/// Embedded migrations from the workspace's `migrations/` folder.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// File name of the database inside the data directory.
pub const DB_FILE: &str = "qchat.db";

// Operator queries (`qchatd tenant|user|room list|disable|delete`, `backup`).
pub(crate) mod admin;

/// Row id of a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct TenantId(pub(crate) i64);
/// Row id of a user (unique across tenants, but always used with its tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct UserId(pub(crate) i64);
/// Row id of a room (unique across tenants, but always used with its tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RoomId(pub(crate) i64);

/// Storage errors the domain layer distinguishes.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    /// A unique constraint refused the row (the thing exists already).
    #[error("already exists")]
    Conflict,
    /// Anything else from SQLite.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

impl DbError {
    pub(crate) fn from_insert(e: sqlx::Error) -> Self {
        match e.as_database_error() {
            Some(d) if d.is_unique_violation() => Self::Conflict,
            _ => Self::Sqlx(e),
        }
    }
}

/// How hard SQLite works to make commits durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous=FULL`: a commit survives power loss (the default).
    Full,
    /// `synchronous=NORMAL`: a commit survives a crash of qchatd, maybe not of the OS.
    Normal,
}

/// Opens (creating if needed) the database in `data_dir` and migrates it.
///
/// # Errors
/// When the file cannot be opened or a migration fails.
pub(crate) async fn open(
    data_dir: &Path,
    durability: Durability,
) -> Result<SqlitePool, sqlx::Error> {
    let path = data_dir.join(DB_FILE);
    let opts = SqliteConnectOptions::from_str("sqlite://")?
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(match durability {
            Durability::Full => SqliteSynchronous::Full,
            Durability::Normal => SqliteSynchronous::Normal,
        })
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
pub(crate) async fn test_pool() -> (SqlitePool, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let pool = open(dir.path(), Durability::Normal).await.expect("open db");
    (pool, dir)
}
