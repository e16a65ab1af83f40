//! The database side of the history scenario: filling a room with the rows
//! the server's writer would have stored, and running the server's history
//! statement ([`qchat_service::HISTORY_SQL`]) directly on the file.

use std::path::Path;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use rand::rngs::StdRng;
use rand::{RngExt as _, SeedableRng as _};
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Rows per fill transaction.
const FILL_CHUNK: u64 = 50_000;
/// Text the message bodies are cut from, so bodies vary in length like chat.
pub(super) const LOREM: &str = "the quick brown fox jumps over the lazy dog while the build \
    finishes and someone asks whether the deploy went out before lunch or after";

/// Ids of the room under test.
#[derive(Debug, Clone, Copy)]
pub(super) struct RoomIds {
    /// `tenants.id`.
    pub tenant: i64,
    /// `rooms.id`.
    pub room: i64,
}

/// One history row as the server decodes it (same columns, same types).
pub(super) type HistoryRow =
    (i64, String, Option<String>, String, String, i64, Option<i64>, Option<i64>, Option<String>);

/// Opens the server's database file with the server's connection settings
/// (WAL, busy timeout); `synchronous` as given.
async fn open(db: &Path, synchronous: SqliteSynchronous) -> anyhow::Result<SqlitePool> {
    let opts = SqliteConnectOptions::from_str("sqlite://")?
        .filename(db)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(synchronous)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .with_context(|| format!("opening {}", db.display()))
}

/// Fills `room` of `tenant` with `count` text messages from `senders`, with
/// the statement the server's writer uses ([`qchat_service::INSERT_MESSAGE_SQL`])
/// and the values it would bind: seqs 1..=count, the sender's id and name, a
/// random 128-bit hex `client_msg_id` like the client library's, kind `text`,
/// increasing millisecond timestamps, no file. Then sets `rooms.last_seq` to
/// `count`, as `count` sends would have. Runs while the server is stopped;
/// returns the ids and how long the fill took.
pub(super) async fn fill(
    db: &Path,
    tenant: &str,
    room: &str,
    senders: &[String],
    count: u64,
) -> anyhow::Result<(RoomIds, Duration)> {
    let started = Instant::now();
    // Nothing else has the file open; a crash mid-fill only loses the bench run.
    let pool = open(db, SqliteSynchronous::Off).await?;
    let (room_id, tenant_id, last_seq): (i64, i64, i64) = sqlx::query_as(
        "select r.id, r.tenant_id, r.last_seq from rooms r join tenants t on t.id = r.tenant_id
         where t.name = ? and r.name = ?",
    )
    .bind(tenant)
    .bind(room)
    .fetch_one(&pool)
    .await
    .context("the room to fill")?;
    ensure!(last_seq == 0, "room {room} is not empty");
    let mut ids = Vec::with_capacity(senders.len());
    for name in senders {
        let id: i64 = sqlx::query_scalar("select id from users where tenant_id = ? and name = ?")
            .bind(tenant_id)
            .bind(name)
            .fetch_one(&pool)
            .await
            .with_context(|| format!("user {name}"))?;
        ids.push((id, name.as_str()));
    }
    let mut rng = StdRng::seed_from_u64(7);
    let start_ts = 1_700_000_000_000_i64;
    let mut seq = 0_u64;
    while seq < count {
        let mut tx = pool.begin().await?;
        let end = (seq + FILL_CHUNK).min(count);
        while seq < end {
            seq += 1;
            let (sender_id, sender_name) = ids[rng.random_range(0..ids.len())];
            let len = rng.random_range(12..LOREM.len());
            let body = format!("#{seq} {}", &LOREM[..len]);
            let s = i64::try_from(seq)?;
            sqlx::query(qchat_service::INSERT_MESSAGE_SQL)
                .bind(tenant_id)
                .bind(room_id)
                .bind(s)
                .bind(sender_id)
                .bind(sender_name)
                .bind(format!("{:032x}", rng.random::<u128>()))
                .bind("text")
                .bind(body)
                .bind(start_ts + s * 50)
                .bind(None::<i64>)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    sqlx::query("update rooms set last_seq = ? where id = ?")
        .bind(i64::try_from(count)?)
        .bind(room_id)
        .execute(&pool)
        .await?;
    // Closing the only connection checkpoints the WAL into the main file.
    pool.close().await;
    Ok((RoomIds { tenant: tenant_id, room: room_id }, started.elapsed()))
}

/// A connection to the live server's database that runs the history query.
pub(super) struct Direct {
    pool: SqlitePool,
    ids: RoomIds,
}

impl Direct {
    /// Opens the file the server is using (WAL lets both read at once).
    pub(super) async fn open(db: &Path, ids: RoomIds) -> anyhow::Result<Self> {
        Ok(Self { pool: open(db, SqliteSynchronous::Full).await?, ids })
    }

    /// The server's history statement with the server's parameters for a
    /// page of `limit` before `before` (it asks for `limit + 1` rows); returns
    /// the seqs and bodies, oldest first, and the time the query took.
    pub(super) async fn page(
        &self,
        before: u64,
        limit: u32,
    ) -> anyhow::Result<(Vec<(u64, String)>, Duration)> {
        let started = Instant::now();
        let rows: Vec<HistoryRow> = sqlx::query_as(qchat_service::HISTORY_SQL)
            .bind(self.ids.tenant)
            .bind(self.ids.room)
            .bind(i64::try_from(before).unwrap_or(i64::MAX))
            .bind(i64::from(limit) + 1)
            // The reader, whose reactions are marked `me` (none here).
            .bind(0_i64)
            .fetch_all(&self.pool)
            .await?;
        let took = started.elapsed();
        let mut page: Vec<(u64, String)> = rows
            .into_iter()
            .take(limit as usize)
            .map(|r| (u64::try_from(r.0).unwrap_or_default(), r.4))
            .collect();
        page.reverse();
        Ok((page, took))
    }

    /// Closes the connection.
    pub(super) async fn close(self) {
        self.pool.close().await;
    }
}
