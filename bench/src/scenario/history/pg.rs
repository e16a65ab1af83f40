//! The PostgreSQL side of the history scenario (`--backend postgres`):
//! filling the room in the server's database and running the server's
//! history statement ([`qchat_service::HISTORY_SQL`], the same text on both
//! engines) directly on it.

use std::time::{Duration, Instant};

use anyhow::{Context as _, ensure};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use super::store::{HistoryRow, LOREM, RoomIds};

/// Rows per fill statement.
const FILL_CHUNK: u64 = 100_000;

async fn open(url: &str) -> anyhow::Result<PgPool> {
    PgPoolOptions::new().max_connections(1).connect(url).await.context("connecting to PostgreSQL")
}

/// Fills `room` of `tenant` with `count` text messages from `senders`, in
/// the columns [`qchat_service::INSERT_MESSAGE_SQL`] fills and with the
/// values the writer would bind (seqs 1..=count, the sender's id and name,
/// a 32-hex `client_msg_id`, kind `text`, increasing timestamps, no file),
/// but computed by PostgreSQL (`generate_series`, 100,000 rows per
/// statement) rather than bound one row at a time: a million round trips
/// would take minutes here. Then `rooms.last_seq` = `count`. Runs while
/// the server is stopped; returns the ids and how long it took.
pub(super) async fn fill(
    url: &str,
    tenant: &str,
    room: &str,
    senders: &[String],
    count: u64,
) -> anyhow::Result<(RoomIds, Duration)> {
    let started = Instant::now();
    let pool = open(url).await?;
    let (room_id, tenant_id, last_seq): (i64, i64, i64) = sqlx::query_as(
        "select r.id, r.tenant_id, r.last_seq from rooms r join tenants t on t.id = r.tenant_id
         where t.name = $1 and r.name = $2",
    )
    .bind(tenant)
    .bind(room)
    .fetch_one(&pool)
    .await
    .context("the room to fill")?;
    ensure!(last_seq == 0, "room {room} is not empty");
    let mut ids = Vec::with_capacity(senders.len());
    for name in senders {
        let id: i64 = sqlx::query_scalar("select id from users where tenant_id = $1 and name = $2")
            .bind(tenant_id)
            .bind(name)
            .fetch_one(&pool)
            .await
            .with_context(|| format!("user {name}"))?;
        ids.push(id);
    }
    let count_i = i64::try_from(count)?;
    let mut from = 1_i64;
    while from <= count_i {
        let to = (from + i64::try_from(FILL_CHUNK)? - 1).min(count_i);
        // Sender and body length from a fixed mix of the seq, so runs
        // repeat; the statement's column list is the writer's.
        sqlx::query(
            "insert into messages (tenant_id, room_id, seq, sender_id, sender_name,
                                   client_msg_id, kind, body, ts, file_id)
             select $1, $2, g, ($3::bigint[])[1 + (g * 7919) % array_length($3, 1)],
                    ($4::text[])[1 + (g * 7919) % array_length($3, 1)],
                    md5(g::text || '/qchat'), 'text',
                    '#' || g || ' ' || left($5, 12 + ((g * 104729) % (length($5) - 12))::int),
                    1700000000000 + g * 50, null
             from generate_series($6::bigint, $7::bigint) g",
        )
        .bind(tenant_id)
        .bind(room_id)
        .bind(&ids)
        .bind(senders)
        .bind(LOREM)
        .bind(from)
        .bind(to)
        .execute(&pool)
        .await
        .context("filling")?;
        from = to + 1;
    }
    sqlx::query("update rooms set last_seq = $1 where id = $2")
        .bind(count_i)
        .bind(room_id)
        .execute(&pool)
        .await?;
    sqlx::query("analyze messages").execute(&pool).await?;
    pool.close().await;
    Ok((RoomIds { tenant: tenant_id, room: room_id }, started.elapsed()))
}

/// A connection to the server's database that runs the history query.
pub(super) struct Direct {
    pool: PgPool,
    ids: RoomIds,
}

impl Direct {
    /// Connects to the database the server uses.
    pub(super) async fn open(url: &str, ids: RoomIds) -> anyhow::Result<Self> {
        Ok(Self { pool: open(url).await?, ids })
    }

    /// As the SQLite side's `page`: the server's statement and parameters.
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
