//! The database side of the search scenario: filling rooms with the rows
//! the server's writer would have stored (its triggers index them), the
//! queries, and the server's search statement
//! ([`qchat_service::SEARCH_SQLITE_SQL`]) run directly on the file.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr as _;
use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use rand::RngExt as _;
use rand::SeedableRng as _;
use rand::rngs::StdRng;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

/// Rows per fill transaction.
const FILL_CHUNK: u64 = 50_000;
/// Syllables the vocabulary's words are made of: 20³ = 8,000 words.
const SYLLABLES: [&str; 20] = [
    "ka", "lo", "mi", "nu", "pe", "ra", "si", "to", "vu", "we", "ba", "de", "fo", "gi", "ha", "jo",
    "ku", "le", "mo", "ne",
];
/// Words in the vocabulary.
const WORDS: usize = 8000;

/// The `i`th word of the vocabulary.
fn word(i: usize) -> String {
    let n = SYLLABLES.len();
    format!("{}{}{}", SYLLABLES[i % n], SYLLABLES[(i / n) % n], SYLLABLES[(i / (n * n)) % n])
}

/// One search: what a user types, and the FTS5 expression the server makes
/// of it (its words quoted, `*` after a prefix).
#[derive(Debug, Clone)]
pub(super) struct Query {
    pub(super) text: String,
    fts5: String,
}

impl Query {
    /// One word (40%), two words (40%) or a two-syllable prefix (20%).
    pub(super) fn random(rng: &mut StdRng) -> Self {
        let pick = rng.random_range(0..10);
        if pick < 4 {
            let w = word(rng.random_range(0..WORDS));
            Self { fts5: format!("\"{w}\""), text: w }
        } else if pick < 8 {
            let (a, b) = (word(rng.random_range(0..WORDS)), word(rng.random_range(0..WORDS)));
            Self { fts5: format!("\"{a}\" \"{b}\""), text: format!("{a} {b}") }
        } else {
            let w = word(rng.random_range(0..WORDS));
            let prefix = &w[..4];
            Self { fts5: format!("\"{prefix}\"*"), text: format!("{prefix}*") }
        }
    }
}

/// What [`fill`] made.
pub(super) struct Filled {
    /// `tenants.id`.
    pub(super) tenant: i64,
    /// Room name → `rooms.id`.
    pub(super) rooms: HashMap<String, i64>,
    /// How long it took.
    pub(super) took: Duration,
}

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

/// Fills `rooms` of `tenant` with `count` text messages in turn from
/// `senders`, with the statement the server's writer uses
/// ([`qchat_service::INSERT_MESSAGE_SQL`]) and the values it would bind
/// (gap-free seqs per room, increasing timestamps, a random
/// `client_msg_id`); bodies are 6 to 14 words of the vocabulary. The
/// search index fills through the schema's triggers, as for sent messages.
/// Then sets each room's `last_seq`. Runs while the server is stopped.
pub(super) async fn fill(
    db: &Path,
    tenant: &str,
    rooms: &[String],
    senders: &[String],
    count: u64,
) -> anyhow::Result<Filled> {
    let started = Instant::now();
    // Nothing else has the file open; a crash mid-fill only loses the run.
    let pool = open(db, SqliteSynchronous::Off).await?;
    let tenant_id: i64 = sqlx::query_scalar("select id from tenants where name = ?")
        .bind(tenant)
        .fetch_one(&pool)
        .await
        .context("the tenant")?;
    let mut room_ids = Vec::with_capacity(rooms.len());
    for name in rooms {
        let id: i64 = sqlx::query_scalar("select id from rooms where tenant_id = ? and name = ?")
            .bind(tenant_id)
            .bind(name)
            .fetch_one(&pool)
            .await
            .with_context(|| format!("room {name}"))?;
        room_ids.push(id);
    }
    let mut users = Vec::with_capacity(senders.len());
    for name in senders {
        let id: i64 = sqlx::query_scalar("select id from users where tenant_id = ? and name = ?")
            .bind(tenant_id)
            .bind(name)
            .fetch_one(&pool)
            .await
            .with_context(|| format!("user {name}"))?;
        users.push((id, name.as_str()));
    }
    let mut rng = StdRng::seed_from_u64(7);
    let start_ts = 1_700_000_000_000_i64;
    let mut seqs = vec![0_i64; room_ids.len()];
    let mut n = 0_u64;
    while n < count {
        let mut tx = pool.begin().await?;
        let end = (n + FILL_CHUNK).min(count);
        while n < end {
            let r = usize::try_from(n % room_ids.len() as u64)?;
            n += 1;
            seqs[r] += 1;
            let (sender_id, sender_name) = users[rng.random_range(0..users.len())];
            let words: Vec<String> =
                (0..rng.random_range(6..=14)).map(|_| word(rng.random_range(0..WORDS))).collect();
            sqlx::query(qchat_service::INSERT_MESSAGE_SQL)
                .bind(tenant_id)
                .bind(room_ids[r])
                .bind(seqs[r])
                .bind(sender_id)
                .bind(sender_name)
                .bind(format!("{:032x}", rng.random::<u128>()))
                .bind("text")
                .bind(words.join(" "))
                .bind(start_ts + i64::try_from(n)? * 50)
                .bind(None::<i64>)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
    }
    for (id, last) in room_ids.iter().zip(&seqs) {
        sqlx::query("update rooms set last_seq = ? where id = ?")
            .bind(last)
            .bind(id)
            .execute(&pool)
            .await?;
    }
    let indexed: i64 = sqlx::query_scalar("select count(*) from messages_fts_docsize")
        .fetch_one(&pool)
        .await
        .unwrap_or(-1);
    ensure!(
        indexed == -1 || u64::try_from(indexed).ok() == Some(count),
        "the index holds {indexed} of {count} messages"
    );
    // Closing the only connection checkpoints the WAL into the main file.
    pool.close().await;
    let rooms = rooms.iter().cloned().zip(room_ids).collect();
    Ok(Filled { tenant: tenant_id, rooms, took: started.elapsed() })
}

/// A connection to the live server's database that runs the search.
pub(super) struct Direct {
    pool: SqlitePool,
    tenant: i64,
    /// The readable rooms' ids as the server binds them (a JSON array), and
    /// the index's rowid range they span.
    rooms_json: String,
    lo: i64,
    hi: i64,
    names: HashMap<i64, String>,
}

impl Direct {
    /// Opens the file the server is using (WAL lets both read at once).
    pub(super) async fn open(
        db: &Path,
        tenant: i64,
        rooms: &HashMap<String, i64>,
        readable: &[String],
    ) -> anyhow::Result<Self> {
        let ids: Vec<i64> = readable.iter().filter_map(|r| rooms.get(r).copied()).collect();
        ensure!(ids.len() == readable.len(), "unknown readable room");
        let lo = ids.iter().min().copied().unwrap_or(0) << 32;
        let hi = (ids.iter().max().copied().unwrap_or(0) << 32) + i64::from(u32::MAX);
        let names = rooms.iter().map(|(n, id)| (*id, n.clone())).collect();
        Ok(Self {
            pool: open(db, SqliteSynchronous::Full).await?,
            tenant,
            rooms_json: serde_json::to_string(&ids)?,
            lo,
            hi,
            names,
        })
    }

    /// The server's search statement with the server's parameters for a
    /// page of `limit` hits from the newest (it asks for `limit + 1` rows);
    /// returns `(room, seq)` of the hits and the time the query took.
    pub(super) async fn search(
        &self,
        q: &Query,
        limit: u32,
    ) -> anyhow::Result<(Vec<(String, u64)>, Duration)> {
        type Row = (i64, i64, String, i64, String, String);
        let started = Instant::now();
        let rows: Vec<Row> = sqlx::query_as(qchat_service::SEARCH_SQLITE_SQL)
            .bind(&q.fts5)
            .bind(self.tenant)
            .bind(&self.rooms_json)
            .bind(self.lo)
            .bind(self.hi)
            .bind(None::<String>)
            .bind(i64::MIN)
            .bind(i64::MAX)
            .bind(false)
            .bind(i64::MAX)
            .bind(i64::MAX)
            .bind(i64::MAX)
            .bind(i64::from(limit) + 1)
            .fetch_all(&self.pool)
            .await?;
        let took = started.elapsed();
        let hits = rows
            .into_iter()
            .take(limit as usize)
            .map(|r| {
                (self.names.get(&r.0).cloned().unwrap_or_default(), u64::try_from(r.1).unwrap_or(0))
            })
            .collect();
        Ok((hits, took))
    }

    /// How many messages of the whole index each query matches, as
    /// `min / median / max`.
    pub(super) async fn match_counts(&self, queries: &[Query]) -> anyhow::Result<String> {
        let mut counts = Vec::with_capacity(queries.len());
        for q in queries {
            let n: i64 =
                sqlx::query_scalar("select count(*) from messages_fts where messages_fts match ?")
                    .bind(&q.fts5)
                    .fetch_one(&self.pool)
                    .await?;
            counts.push(n);
        }
        counts.sort_unstable();
        let at = |i: usize| counts.get(i).copied().unwrap_or(0);
        Ok(format!("{} / {} / {}", at(0), at(counts.len() / 2), at(counts.len().saturating_sub(1))))
    }

    /// Closes the connection.
    pub(super) async fn close(self) {
        self.pool.close().await;
    }
}
