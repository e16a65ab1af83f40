//! Fresh databases for the storage tests, one per test and backend, so the
//! same test runs on SQLite and on PostgreSQL and tests stay parallel-safe.
//!
//! PostgreSQL comes from `QCHAT_TEST_PG_URL` (default
//! `postgres://root@127.0.0.1:5432/postgres`, the machine's server); each
//! test gets a database of its own, dropped when the [`TestDb`] drops. When
//! the server cannot be reached the test fails within seconds, saying so.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::{Connection as _, PgConnection};

use super::{Backend, DatabaseUrl, Db, Durability};

/// The server the PostgreSQL tests use unless `QCHAT_TEST_PG_URL` says.
const DEFAULT_PG_URL: &str = "postgres://root@127.0.0.1:5432/postgres";

/// A database made for one test; removed when dropped.
pub(crate) struct TestDb {
    /// The pool.
    pub(crate) db: Db,
    /// Where it is.
    pub(crate) url: DatabaseUrl,
    _dir: tempfile::TempDir,
    /// PostgreSQL: (server URL, database name) to drop.
    pg: Option<(String, String)>,
}

impl std::ops::Deref for TestDb {
    type Target = Db;
    fn deref(&self) -> &Db {
        &self.db
    }
}

fn admin_url() -> String {
    std::env::var("QCHAT_TEST_PG_URL").unwrap_or_else(|_| DEFAULT_PG_URL.to_owned())
}

/// `admin_url` with its database replaced by `name`.
fn with_database(url: &str, name: &str) -> String {
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

async fn admin_conn(url: &str) -> PgConnection {
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(url)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => panic!(
            "PostgreSQL at {url} refused the test's connection ({e}); these tests need it \
             running (set QCHAT_TEST_PG_URL, or start it: .ci/run does)"
        ),
        Err(_) => panic!(
            "PostgreSQL at {url} did not answer within 5 s; these tests need it running \
             (set QCHAT_TEST_PG_URL, or start it: .ci/run does)"
        ),
    }
}

/// A new, migrated database on `backend`.
pub(crate) async fn fresh(backend: Backend) -> TestDb {
    let test_db = unmigrated(backend).await;
    test_db.db.migrate().await.expect("migrate test database");
    test_db
}

/// A new, empty database on `backend` (no migration applied).
pub(crate) async fn unmigrated(backend: Backend) -> TestDb {
    let dir = tempfile::tempdir().expect("tempdir");
    match backend {
        Backend::Sqlite => {
            let url = DatabaseUrl::parse("", dir.path()).expect("sqlite url");
            let db = Db::connect(&url, Durability::Normal).await.expect("open sqlite");
            TestDb { db, url, _dir: dir, pg: None }
        }
        Backend::Postgres => {
            static N: AtomicU64 = AtomicU64::new(0);
            let admin = admin_url();
            let name = format!(
                "qchat_unit_{}_{}_{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed),
                super::now_ms()
            );
            let mut c = admin_conn(&admin).await;
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("create database {name}")))
                .execute(&mut c)
                .await
                .expect("create test database");
            drop(c.close().await);
            let url = DatabaseUrl::Postgres(with_database(&admin, &name));
            let db = Db::connect(&url, Durability::Normal).await.expect("open postgres");
            TestDb { db, url, _dir: dir, pg: Some((admin, name)) }
        }
    }
}

/// A fresh database on each backend: SQLite, then PostgreSQL.
pub(crate) async fn each() -> Vec<TestDb> {
    vec![fresh(Backend::Sqlite).await, fresh(Backend::Postgres).await]
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else { return };
        // Drop runs inside the test's runtime: the cleanup gets a thread and
        // a runtime of its own, and the test waits for it. `with (force)`
        // ends the pool's connections from the server's side (closing the
        // pool here would wait on the blocked test runtime).
        let done = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
            let Ok(rt) = rt else { return };
            rt.block_on(async move {
                if let Ok(Ok(mut c)) =
                    tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin))
                        .await
                {
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
