//! Storage: all SQL lives in this module's children; the rest of the
//! service sees sqlx-free domain types and functions that take the tenant
//! first.
//!
//! Two backends sit behind one boundary ([`backend`]): embedded SQLite (the
//! default, one file in the data directory) and PostgreSQL (cluster mode),
//! picked by the `database_url` setting. Each function is written once, with
//! `$N` placeholders that both engines take, and runs on either through
//! [`on!`]; where the dialects differ, the function picks its text with
//! `pick(sqlite, postgres)` next to each other. Functions that run one
//! statement take `impl Into<Ex<'_>>` (callers pass `&db`, `&mut tx` or
//! `&mut conn`); those that run several in a row take a [`Conn`] inside the
//! caller's transaction. Each has one name, its table's module and its own:
//! `db::rooms::join`, `db::files::usage`, `db::messages::before`; the domain
//! types they take and return are re-exported here (`db::Room`).
//!
//! Migrations: `migrations/NNNN_*.sql` for SQLite and
//! `migrations/postgres/NNNN_*.sql` for PostgreSQL, the same numbers and the
//! same schema; a new migration is added to both folders.

mod backend;
pub(crate) mod claims;
pub(crate) mod cluster;
pub(crate) mod copy;
pub(crate) mod files;
pub(crate) mod members;
pub(crate) mod mentions;
pub(crate) mod messages;
pub(crate) mod rooms;
pub(crate) mod search;
pub(crate) mod sessions;
mod sql;
pub(crate) mod tenants;
pub(crate) mod users;

pub use backend::{Backend, DB_FILE, DatabaseUrl, MIGRATOR, PG_MIGRATOR};
pub(crate) use backend::{Conn, Db, Ex, on, on_conn};
pub(crate) use files::{Content, NewUpload, Upload, VisibleFile};
pub(crate) use mentions::Counts;
pub(crate) use messages::{AppendOutcome, FileAttach, NewMessage};
pub use messages::{HISTORY_SQL, INSERT_MESSAGE_SQL};
pub(crate) use rooms::{Room, RoomLabel, Standing};
pub use search::{SEARCH_POSTGRES_SQL, SEARCH_SQLITE_SQL};
pub(crate) use tenants::Tenant;

// Operator queries (`qchatd tenant|user|room list|disable|delete`, `backup`).
pub(crate) mod admin;

#[cfg(test)]
pub(crate) mod testing;

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
    /// Anything else from the database.
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

/// How hard SQLite works to make commits durable (PostgreSQL's is the
/// server's own setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// `synchronous=FULL`: a commit survives power loss (the default).
    Full,
    /// `synchronous=NORMAL`: a commit survives a crash of qchatd, maybe not of the OS.
    Normal,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
