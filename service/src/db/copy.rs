//! Copying a SQLite deployment's database into an empty PostgreSQL one
//! (`qchatd migrate-to`): every row of every table, ids kept, in one
//! PostgreSQL transaction, so a failure leaves the target empty.
//!
//! Columns come from the target's catalogue and are read from the source by
//! name, so a column added by a migration (to both folders) is copied
//! without a change here (a generated one, like the search index's
//! `messages.search`, is left for PostgreSQL to compute; SQLite's FTS5
//! tables have no counterpart to copy); a new *table* must be added to [`TABLES`] in
//! reference order, and the copy refuses to run while one is missing.

use std::collections::BTreeSet;

use futures_util::TryStreamExt as _;
use sqlx::sqlite::SqliteRow;
use sqlx::{AssertSqlSafe, PgPool, Row as _, SqliteConnection, SqlitePool};

/// Every table, parents before children (a row's references are copied
/// before it).
pub(crate) const TABLES: &[&str] = &[
    "tenants",
    "users",
    "sessions",
    "rooms",
    "memberships",
    "invitations",
    "bans",
    "files",
    "messages",
    "offers",
    "uploads",
    "reactions",
    "mentions",
];

/// Bind parameters per insert statement, below PostgreSQL's 65,535.
const PARAMS_PER_STATEMENT: usize = 30_000;

/// Why the copy did not happen.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CopyError {
    /// The target holds data already.
    #[error("the target database is not empty ({0} has rows); copy into a new database")]
    NotEmpty(String),
    /// The schema has a table the copy does not know.
    #[error("table {0} is not in the copy's list (db::copy::TABLES); add it in reference order")]
    UnknownTable(String),
    /// A column type the copy does not carry.
    #[error("column {0} has type {1}, which the copy does not carry")]
    UnknownType(String, String),
    /// The database said no.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// A column of the target and how its values travel.
struct Column {
    name: String,
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Int,
    Bool,
    Text,
    Bytes,
}

/// Copies every row of `from` into `to` (both migrated to the same
/// version; `to` empty) and moves `to`'s identity sequences past the copied
/// ids. Returns `(table, rows)` in copy order.
///
/// # Errors
/// [`CopyError`]; on any error nothing is committed.
pub(crate) async fn sqlite_to_postgres(
    from: &SqlitePool,
    to: &PgPool,
) -> Result<Vec<(String, u64)>, CopyError> {
    // One read transaction on the source: the copy is the database as of
    // its first read, even while a server writes to it.
    let mut src = from.begin().await?;
    let tables: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.tables
         where table_schema = current_schema() and table_type = 'BASE TABLE'
           and table_name <> '_sqlx_migrations'",
    )
    .fetch_all(to)
    .await?;
    let known: BTreeSet<&str> = TABLES.iter().copied().collect();
    if let Some(t) = tables.iter().find(|t| !known.contains(t.as_str())) {
        return Err(CopyError::UnknownTable(t.clone()));
    }
    let mut tx = to.begin().await?;
    for table in TABLES {
        let any: Option<i32> =
            sqlx::query_scalar(AssertSqlSafe(format!("select 1 from {table} limit 1")))
                .fetch_optional(&mut *tx)
                .await?;
        if any.is_some() {
            return Err(CopyError::NotEmpty((*table).to_owned()));
        }
    }
    let mut counts = Vec::new();
    for table in TABLES {
        let columns = columns(&mut tx, table).await?;
        let n = copy_table(&mut src, &mut tx, table, &columns).await?;
        counts.push(((*table).to_owned(), n));
    }
    restart_identities(&mut src, &mut tx).await?;
    tx.commit().await?;
    src.rollback().await?;
    Ok(counts)
}

async fn columns(tx: &mut sqlx::PgConnection, table: &str) -> Result<Vec<Column>, CopyError> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select column_name::text, data_type::text from information_schema.columns
         where table_schema = current_schema() and table_name = $1 and is_generated = 'NEVER'
         order by ordinal_position",
    )
    .bind(table)
    .fetch_all(&mut *tx)
    .await?;
    rows.into_iter()
        .map(|(name, ty)| {
            let kind = match ty.as_str() {
                "bigint" | "integer" | "smallint" => Kind::Int,
                "boolean" => Kind::Bool,
                "text" | "character varying" => Kind::Text,
                "bytea" => Kind::Bytes,
                _ => return Err(CopyError::UnknownType(format!("{table}.{name}"), ty)),
            };
            Ok(Column { name, kind })
        })
        .collect()
}

async fn copy_table(
    from: &mut SqliteConnection,
    tx: &mut sqlx::PgConnection,
    table: &str,
    columns: &[Column],
) -> Result<u64, CopyError> {
    let list = columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", ");
    let per_statement = (PARAMS_PER_STATEMENT / columns.len().max(1)).max(1);
    let mut rows =
        sqlx::query(AssertSqlSafe(format!("select {list} from {table}"))).fetch(&mut *from);
    let mut batch: Vec<SqliteRow> = Vec::with_capacity(per_statement);
    let mut total = 0u64;
    while let Some(row) = rows.try_next().await? {
        batch.push(row);
        if batch.len() == per_statement {
            total += insert(tx, table, &list, columns, &batch).await?;
            batch.clear();
        }
    }
    if !batch.is_empty() {
        total += insert(tx, table, &list, columns, &batch).await?;
    }
    Ok(total)
}

async fn insert(
    tx: &mut sqlx::PgConnection,
    table: &str,
    list: &str,
    columns: &[Column],
    rows: &[SqliteRow],
) -> Result<u64, CopyError> {
    let mut sql = format!("insert into {table} ({list}) overriding system value values ");
    let mut n = 0;
    for r in 0..rows.len() {
        sql.push_str(if r == 0 { "(" } else { ", (" });
        for c in 0..columns.len() {
            n += 1;
            if c > 0 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&n.to_string());
        }
        sql.push(')');
    }
    let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false);
    for row in rows {
        for c in columns {
            let name = c.name.as_str();
            q = match c.kind {
                Kind::Int => q.bind(row.try_get::<Option<i64>, _>(name)?),
                Kind::Bool => q.bind(row.try_get::<Option<bool>, _>(name)?),
                Kind::Text => q.bind(row.try_get::<Option<String>, _>(name)?),
                Kind::Bytes => q.bind(row.try_get::<Option<Vec<u8>>, _>(name)?),
            };
        }
    }
    Ok(q.execute(&mut *tx).await?.rows_affected())
}

/// Moves each identity past the ids copied, and past what SQLite's
/// AUTOINCREMENT handed out before (an offer id is never given twice, even
/// when the newest offer was deleted).
async fn restart_identities(
    from: &mut SqliteConnection,
    tx: &mut sqlx::PgConnection,
) -> Result<(), CopyError> {
    let identities: Vec<(String, String)> = sqlx::query_as(
        "select table_name::text, column_name::text from information_schema.columns
         where table_schema = current_schema() and is_identity = 'YES'",
    )
    .fetch_all(&mut *tx)
    .await?;
    for (table, column) in identities {
        // sqlite_sequence exists once a table uses AUTOINCREMENT (offers do).
        let handed_out: Option<i64> =
            sqlx::query_scalar("select seq from sqlite_sequence where name = $1")
                .bind(&table)
                .fetch_optional(&mut *from)
                .await
                .unwrap_or(None);
        let max: Option<i64> =
            sqlx::query_scalar(AssertSqlSafe(format!("select max({column}) from {table}")))
                .fetch_one(&mut *tx)
                .await?;
        let next = max.unwrap_or(0).max(handed_out.unwrap_or(0)) + 1;
        sqlx::query("select setval(pg_get_serial_sequence($1, $2), $3, false)")
            .bind(&table)
            .bind(&column)
            .bind(next)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}
