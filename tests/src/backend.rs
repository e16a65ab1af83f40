//! Which database a test server runs on, and a PostgreSQL database of its
//! own for each test that uses PostgreSQL.
//!
//! The end-to-end suites are a matrix: `QCHAT_TEST_BACKEND=postgres` runs
//! the same tests with every [`TestServer`](crate::TestServer) on a fresh
//! PostgreSQL database (created on the server `QCHAT_TEST_PG_URL` names,
//! default `postgres://root@127.0.0.1:5432/postgres`, and dropped when the
//! test ends); unset or `sqlite`, on the embedded SQLite file. When
//! PostgreSQL cannot be reached a test fails within seconds, saying so.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use sqlx::{Connection as _, PgConnection};

/// The server PostgreSQL tests use unless `QCHAT_TEST_PG_URL` says.
pub const DEFAULT_PG_URL: &str = "postgres://root@127.0.0.1:5432/postgres";

/// A database engine a test server can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded SQLite file in the data directory (the default).
    Sqlite,
    /// A PostgreSQL database made for the test.
    Postgres,
}

impl Backend {
    /// The backend `QCHAT_TEST_BACKEND` names (`sqlite`, the default, or
    /// `postgres`).
    ///
    /// # Panics
    /// On any other value, naming the ones accepted.
    pub fn from_env() -> Self {
        match std::env::var("QCHAT_TEST_BACKEND").as_deref() {
            Err(_) | Ok("" | "sqlite") => Self::Sqlite,
            Ok("postgres" | "postgresql") => Self::Postgres,
            Ok(other) => panic!("QCHAT_TEST_BACKEND={other:?}: use sqlite or postgres"),
        }
    }
}

/// The PostgreSQL server tests make their databases on.
pub fn pg_admin_url() -> String {
    std::env::var("QCHAT_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

/// `url` with its database replaced by `name`.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let base = match base.rfind('/') {
        Some(i) if i > base.find("://").map_or(0, |j| j + 2) => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

async fn connect(url: &str) -> anyhow::Result<PgConnection> {
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => bail!(
            "PostgreSQL at {url} refused the test's connection ({e}); this test needs it running \
             (set QCHAT_TEST_PG_URL, or start it: .ci/services does)"
        ),
        Err(_) => bail!(
            "PostgreSQL at {url} did not answer within 5 s; this test needs it running \
             (set QCHAT_TEST_PG_URL, or start it: .ci/services does)"
        ),
    }
}

/// A PostgreSQL database made for one test, dropped (with whatever is still
/// connected to it) when this is dropped.
#[derive(Debug)]
pub struct ScratchDb {
    admin: String,
    name: String,
    /// The URL qchatd connects with.
    pub url: String,
}

impl ScratchDb {
    /// Creates an empty database on [`pg_admin_url`]'s server.
    ///
    /// # Errors
    /// When the server cannot be reached (within 5 s) or refuses.
    pub async fn create() -> anyhow::Result<Self> {
        Self::create_on(&pg_admin_url()).await
    }

    /// Creates an empty database on the server `admin` names.
    ///
    /// # Errors
    /// When the server cannot be reached (within 5 s) or refuses.
    pub async fn create_on(admin: &str) -> anyhow::Result<Self> {
        static N: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!(
            "qchat_e2e_{}_{}_{nanos}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let mut c = connect(admin).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
            .execute(&mut c)
            .await
            .with_context(|| format!("creating database {name}"))?;
        let _ = c.close().await;
        let url = with_database(admin, &name);
        Ok(Self { admin: admin.to_owned(), name, url })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for ScratchDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        // Drop may run inside a test's runtime: the cleanup gets a thread and
        // a runtime of its own, and the test waits for it.
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async move {
                if let Ok(mut c) = connect(&admin).await {
                    let sql = format!("drop database if exists {name} with (force)");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                    let _ = c.close().await;
                }
            });
        });
        let _ = done.join();
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://root@h:5432/postgres", "x"),
            "postgres://root@h:5432/x"
        );
        assert_eq!(with_database("postgres://root@h:5432", "x"), "postgres://root@h:5432/x");
        assert_eq!(
            with_database("postgres://h/postgres?sslmode=disable", "x"),
            "postgres://h/x?sslmode=disable"
        );
    }
}
