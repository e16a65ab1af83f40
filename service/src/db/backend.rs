//! The storage boundary: which database engine holds the state, and how one
//! query text runs on either.
//!
//! [`Db`] is the pool of the configured backend (SQLite or PostgreSQL),
//! [`Tx`] a transaction on it, [`Conn`] a connection inside one, and [`Ex`]
//! whatever a single statement can run on (a pool or a connection). The
//! table modules write each query once, with `$1, $2, …` placeholders, which
//! both engines take (sqlx binds SQLite's `$N` by number), and run it with
//! [`on!`](crate::db::on), which compiles the same body once per backend:
//!
//! ```ignore
//! let row: Option<(i64,)> = on!(db, |e| sqlx::query_as("select id from rooms where id = $1")
//!     .bind(id).fetch_optional(e).await)?;
//! ```
//!
//! Where the dialects differ, [`Ex::pick`] picks the text:
//! `ex.pick(SQLITE_SQL, POSTGRES_SQL)` (a [`Conn`] converts to an [`Ex`]
//! with `conn.re().into()`), or a `match` on the [`Conn`] runs a statement
//! on one backend only. Keep such pairs next to
//! each other in the table module, so a change to one is seen to the other.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Acquire as _, PgConnection, PgPool, Postgres, Sqlite, SqliteConnection, SqlitePool};

use super::Durability;

/// Embedded SQLite migrations from the workspace's `migrations/` folder.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// Embedded PostgreSQL migrations from `migrations/postgres/`: the same
/// numbers and the same schema as [`MIGRATOR`]'s, in PostgreSQL's types.
pub static PG_MIGRATOR: Migrator = sqlx::migrate!("../migrations/postgres");

/// File name of the SQLite database inside the data directory.
pub const DB_FILE: &str = "qchat.db";

/// Connections in a PostgreSQL pool (reads; the committer has its own).
const PG_POOL: u32 = 16;
/// How long a request waits for a PostgreSQL connection before it fails
/// with `unavailable` (the pool's timeout), also when the server is down.
const PG_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// The database engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite, one file in the data directory.
    Sqlite,
    /// A PostgreSQL server (cluster mode).
    Postgres,
}

/// Where the state lives, from the `database_url` setting.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL (`postgres://user@host:port/db`).
    Postgres(String),
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            // The URL may hold a password.
            Self::Postgres(_) => f.write_str("postgres://…"),
        }
    }
}

impl DatabaseUrl {
    /// Reads a `database_url` setting: `sqlite://PATH` (or `sqlite:PATH`),
    /// `postgres://…` or `postgresql://…`; empty means `qchat.db` in
    /// `data_dir`.
    ///
    /// # Errors
    /// A message naming the schemes accepted.
    pub fn parse(url: &str, data_dir: &Path) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Ok(Self::Sqlite(data_dir.join(DB_FILE)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        let path = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"));
        match path {
            Some(p) if !p.is_empty() => Ok(Self::Sqlite(PathBuf::from(p))),
            _ => Err(format!(
                "{url:?} is not a database URL: use sqlite://PATH or postgres://USER@HOST:PORT/DB"
            )),
        }
    }

    /// The engine this URL names.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }
}

/// A pool of connections to the configured database. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) enum Db {
    /// SQLite.
    Sqlite(SqlitePool),
    /// PostgreSQL.
    Postgres(PgPool),
}

impl Db {
    /// Opens (creating a SQLite file if needed) and migrates the database.
    ///
    /// # Errors
    /// When it cannot be reached, opened or migrated.
    pub(crate) async fn open(
        url: &DatabaseUrl,
        durability: Durability,
    ) -> Result<Self, sqlx::Error> {
        let db = Self::connect(url, durability).await?;
        db.migrate().await?;
        Ok(db)
    }

    /// Connects without migrating.
    ///
    /// # Errors
    /// When the database cannot be reached or opened.
    pub(crate) async fn connect(
        url: &DatabaseUrl,
        durability: Durability,
    ) -> Result<Self, sqlx::Error> {
        match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)?;
                }
                let opts = SqliteConnectOptions::from_str("sqlite://")?
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(match durability {
                        Durability::Full => SqliteSynchronous::Full,
                        Durability::Normal => SqliteSynchronous::Normal,
                    })
                    .foreign_keys(true)
                    // Deleted rows (a deleted room's messages) are
                    // overwritten with zeros, not left in free pages:
                    // deleting really erases.
                    .pragma("secure_delete", "on")
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?;
                Ok(Self::Sqlite(pool))
            }
            DatabaseUrl::Postgres(url) => {
                // PostgreSQL commits are durable (fsync on commit) unless the
                // server is configured otherwise; `durability` is SQLite's.
                let opts = PgConnectOptions::from_str(url)?;
                let pool = PgPoolOptions::new()
                    .max_connections(PG_POOL)
                    .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                    .connect_with(opts)
                    .await?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    /// Applies the backend's pending migrations.
    ///
    /// # Errors
    /// When a migration fails or the database holds an unknown one.
    pub(crate) async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Self::Sqlite(p) => MIGRATOR.run(p).await,
            Self::Postgres(p) => PG_MIGRATOR.run(p).await,
        }
    }

    /// The engine.
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }

    /// A pool of one connection with the same options, for a single writer
    /// that must not queue behind the reads of the shared pool.
    pub(crate) fn single(&self) -> Self {
        match self {
            Self::Sqlite(p) => Self::Sqlite(
                SqlitePoolOptions::new()
                    .max_connections(1)
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .connect_lazy_with((*p.connect_options()).clone()),
            ),
            Self::Postgres(p) => Self::Postgres(
                PgPoolOptions::new()
                    .max_connections(1)
                    .acquire_timeout(PG_ACQUIRE_TIMEOUT)
                    .connect_lazy_with((*p.connect_options()).clone()),
            ),
        }
    }

    /// A transaction for reads and small writes.
    ///
    /// # Errors
    /// When no connection can be had.
    pub(crate) async fn begin(&self) -> Result<Tx<'static>, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(p) => Tx::Sqlite(p.begin().await?),
            Self::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A transaction that writes: on SQLite it takes the write lock up
    /// front (`BEGIN IMMEDIATE`: a deferred transaction that read first
    /// could fail with SQLITE_BUSY_SNAPSHOT when another connection wrote in
    /// between); PostgreSQL locks the rows it updates.
    ///
    /// # Errors
    /// When no connection can be had.
    pub(crate) async fn begin_write(&self) -> Result<Tx<'static>, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(p) => Tx::Sqlite(p.begin_with("BEGIN IMMEDIATE").await?),
            Self::Postgres(p) => Tx::Postgres(p.begin().await?),
        })
    }

    /// A connection of the pool, for several statements in a row (the
    /// service runs those in transactions; tests use it).
    ///
    /// # Errors
    /// When no connection can be had.
    #[cfg(test)]
    pub(crate) async fn acquire(&self) -> Result<Pooled, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(p) => Pooled::Sqlite(p.acquire().await?),
            Self::Postgres(p) => Pooled::Postgres(p.acquire().await?),
        })
    }

    /// Closes every connection (waits for those in use).
    pub(crate) async fn close(&self) {
        match self {
            Self::Sqlite(p) => p.close().await,
            Self::Postgres(p) => p.close().await,
        }
    }
}

/// A transaction (or a savepoint in one) on either backend. Rolled back when
/// dropped without [`Tx::commit`].
pub(crate) enum Tx<'c> {
    /// SQLite.
    Sqlite(sqlx::Transaction<'c, Sqlite>),
    /// PostgreSQL.
    Postgres(sqlx::Transaction<'c, Postgres>),
}

impl Tx<'_> {
    /// Commits (releases, for a savepoint).
    ///
    /// # Errors
    /// When the database refuses the commit.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(t) => t.commit().await,
            Self::Postgres(t) => t.commit().await,
        }
    }

    /// Rolls back.
    ///
    /// # Errors
    /// When the connection fails.
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Self::Sqlite(t) => t.rollback().await,
            Self::Postgres(t) => t.rollback().await,
        }
    }

    /// A savepoint inside this transaction.
    ///
    /// # Errors
    /// When the database refuses it.
    pub(crate) async fn savepoint(&mut self) -> Result<Tx<'_>, sqlx::Error> {
        Ok(match self {
            Self::Sqlite(t) => Tx::Sqlite(t.begin().await?),
            Self::Postgres(t) => Tx::Postgres(t.begin().await?),
        })
    }

    /// The transaction's connection, for statements.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(t) => Conn::Sqlite(t),
            Self::Postgres(t) => Conn::Postgres(t),
        }
    }
}

/// A connection taken from a [`Db`]; back to the pool when dropped.
#[cfg(test)]
pub(crate) enum Pooled {
    /// SQLite.
    Sqlite(sqlx::pool::PoolConnection<Sqlite>),
    /// PostgreSQL.
    Postgres(sqlx::pool::PoolConnection<Postgres>),
}

#[cfg(test)]
impl Pooled {
    /// The connection, for statements.
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(c) => Conn::Sqlite(c),
            Self::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// One connection of either backend, borrowed: what functions that run
/// several statements in a row (inside the caller's transaction) take.
pub(crate) enum Conn<'c> {
    /// SQLite.
    Sqlite(&'c mut SqliteConnection),
    /// PostgreSQL.
    Postgres(&'c mut PgConnection),
}

impl Conn<'_> {
    /// Borrows again, for the next statement.
    pub(crate) fn re(&mut self) -> Conn<'_> {
        match self {
            Self::Sqlite(c) => Conn::Sqlite(c),
            Self::Postgres(c) => Conn::Postgres(c),
        }
    }
}

/// What one statement runs on: a pool (it takes a connection for the
/// statement) or a connection (in a transaction). Functions take
/// `impl Into<Ex<'_>>`, so callers pass `&db`, `&mut tx` or `&mut conn`.
pub(crate) enum Ex<'c> {
    /// The SQLite pool.
    SqlitePool(&'c SqlitePool),
    /// A SQLite connection.
    Sqlite(&'c mut SqliteConnection),
    /// The PostgreSQL pool.
    PgPool(&'c PgPool),
    /// A PostgreSQL connection.
    Pg(&'c mut PgConnection),
}

impl Ex<'_> {
    /// The engine.
    pub(crate) fn backend(&self) -> Backend {
        match self {
            Self::SqlitePool(_) | Self::Sqlite(_) => Backend::Sqlite,
            Self::PgPool(_) | Self::Pg(_) => Backend::Postgres,
        }
    }

    /// `sqlite` on SQLite, `postgres` on PostgreSQL.
    pub(crate) fn pick<T>(&self, sqlite: T, postgres: T) -> T {
        match self.backend() {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        }
    }
}

impl<'c> From<&'c Db> for Ex<'c> {
    fn from(db: &'c Db) -> Self {
        match db {
            Db::Sqlite(p) => Self::SqlitePool(p),
            Db::Postgres(p) => Self::PgPool(p),
        }
    }
}

impl<'c> From<&'c mut Tx<'_>> for Ex<'c> {
    fn from(tx: &'c mut Tx<'_>) -> Self {
        match tx {
            Tx::Sqlite(t) => Self::Sqlite(t),
            Tx::Postgres(t) => Self::Pg(t),
        }
    }
}

#[cfg(test)]
impl<'c> From<&'c mut Pooled> for Ex<'c> {
    fn from(c: &'c mut Pooled) -> Self {
        match c {
            Pooled::Sqlite(c) => Self::Sqlite(c),
            Pooled::Postgres(c) => Self::Pg(c),
        }
    }
}

impl<'c> From<&'c mut Conn<'_>> for Ex<'c> {
    fn from(c: &'c mut Conn<'_>) -> Self {
        match c {
            Conn::Sqlite(c) => Self::Sqlite(c),
            Conn::Postgres(c) => Self::Pg(c),
        }
    }
}

impl<'c> From<Conn<'c>> for Ex<'c> {
    fn from(c: Conn<'c>) -> Self {
        match c {
            Conn::Sqlite(c) => Self::Sqlite(c),
            Conn::Postgres(c) => Self::Pg(c),
        }
    }
}

/// Runs `$body` with `$e` bound to the executor of whichever backend `$ex`
/// (anything `Into<Ex>`) is on: the body is compiled once per backend, so
/// the same query text and binds serve both. See the module doc.
macro_rules! on {
    ($ex:expr, |$e:ident| $body:expr) => {
        match ::core::convert::Into::<$crate::db::Ex<'_>>::into($ex) {
            $crate::db::Ex::SqlitePool($e) => $body,
            $crate::db::Ex::Sqlite($e) => $body,
            $crate::db::Ex::PgPool($e) => $body,
            $crate::db::Ex::Pg($e) => $body,
        }
    };
}
pub(crate) use on;

/// Runs `$body` with `$e` bound to the `&mut` connection of whichever
/// backend the [`Conn`] `$conn` is on, reborrowed so a function can run
/// several statements on it (`fetch_one(&mut *e)`).
macro_rules! on_conn {
    ($conn:expr, |$e:ident| $body:expr) => {
        match $conn.re() {
            $crate::db::Conn::Sqlite($e) => $body,
            $crate::db::Conn::Postgres($e) => $body,
        }
    };
}
pub(crate) use on_conn;
