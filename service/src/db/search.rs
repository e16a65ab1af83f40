//! Search queries over the full-text index of migration 0008: FTS5 on
//! SQLite, the `search` tsvector column on PostgreSQL. One statement per
//! engine, kept side by side; the benchmark runs the same text directly
//! ([`SEARCH_SQLITE_SQL`], [`SEARCH_POSTGRES_SQL`]).

use futures_util::stream::BoxStream;

use super::{Ex, RoomId, TenantId};
use crate::search::Cursor;

/// The search on SQLite. `$1` the FTS5 expression, `$2` the tenant, `$3` a
/// JSON array of the room ids the caller may read, `$4`/`$5` the index's
/// rowid range those rooms span (FTS5 narrows its scan to it), `$6` the
/// sender's name or null, `$7`/`$8` the time range `[after, before)`, `$9`
/// true for file messages only, `$10..$12` the cursor (ts, room, seq),
/// `$13` the row limit. Newest first.
pub const SEARCH_SQLITE_SQL: &str = "\
select m.room_id, m.seq, m.sender_name, m.ts, m.kind, m.body
from messages_fts f
join messages m on m.room_id = (f.rowid >> 32) and m.seq = (f.rowid & 4294967295)
where messages_fts match $1 and f.rowid between $4 and $5
  and m.tenant_id = $2
  and m.room_id in (select value from json_each($3))
  and ($6 is null or m.sender_name = $6)
  and m.ts >= $7 and m.ts < $8
  and ($9 = 0 or m.kind = 'file')
  and (m.ts, m.room_id, m.seq) < ($10, $11, $12)
order by m.ts desc, m.room_id desc, m.seq desc
limit $13";

/// The search on PostgreSQL: the same parameters but `$1` a `tsquery` text
/// (`simple` configuration), `$3` an array of room ids, and no `$4`/`$5`
/// (bound, unused: they keep the numbering of the SQLite text).
pub const SEARCH_POSTGRES_SQL: &str = "\
select m.room_id, m.seq, m.sender_name, m.ts, m.kind, m.body
from messages m
where m.search @@ to_tsquery('simple', $1) and $4::bigint <= $5::bigint
  and m.tenant_id = $2
  and m.room_id = any($3)
  and ($6::text is null or m.sender_name = $6)
  and m.ts >= $7 and m.ts < $8
  and (not $9 or m.kind = 'file')
  and (m.ts, m.room_id, m.seq) < ($10, $11, $12)
order by m.ts desc, m.room_id desc, m.seq desc
limit $13";

/// What to search for and where.
#[derive(Debug, Clone)]
pub(crate) struct Search {
    /// The FTS5 expression (`Query::fts5`).
    pub(crate) fts5: String,
    /// The `tsquery` text (`Query::tsquery`).
    pub(crate) tsquery: String,
    /// The rooms searched: only rooms the caller may read, never empty.
    pub(crate) rooms: Vec<RoomId>,
    /// Only this sender.
    pub(crate) from: Option<String>,
    /// Committed at or after this time.
    pub(crate) after: i64,
    /// Committed before this time.
    pub(crate) before: i64,
    /// File messages only.
    pub(crate) has_file: bool,
    /// From after this hit.
    pub(crate) cursor: Cursor,
    /// Rows to read at most.
    pub(crate) limit: u32,
}

/// One message found.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct HitRow {
    pub(crate) room_id: i64,
    pub(crate) seq: i64,
    pub(crate) sender_name: String,
    pub(crate) ts: i64,
    pub(crate) kind: String,
    pub(crate) body: String,
}

/// The index's rowid of a message (migration 0008): room id × 2³² + seq.
fn fts_rowid(room: i64, seq: i64) -> i64 {
    room.saturating_mul(1 << 32).saturating_add(seq)
}

/// The hits of `q` in the tenant, newest first, read lazily.
pub(crate) fn hits<'e>(
    db: impl Into<Ex<'e>>,
    tenant: TenantId,
    q: &Search,
) -> BoxStream<'e, Result<HitRow, sqlx::Error>> {
    let lo = q.rooms.iter().map(|r| r.0).min().unwrap_or(0);
    let hi = q.rooms.iter().map(|r| r.0).max().unwrap_or(0);
    let (lo, hi) = (fts_rowid(lo, 0), fts_rowid(hi, u32::MAX.into()));
    let ids: Vec<i64> = q.rooms.iter().map(|r| r.0).collect();
    let c = q.cursor;
    let limit = i64::from(q.limit);
    // The binds after $3 are the same on both engines.
    macro_rules! rest {
        ($query:expr) => {
            $query
                .bind(lo)
                .bind(hi)
                .bind(q.from.clone())
                .bind(q.after)
                .bind(q.before)
                .bind(q.has_file)
                .bind(c.ts)
                .bind(c.room)
                .bind(c.seq)
                .bind(limit)
        };
    }
    let json = serde_json::Value::from(ids.clone()).to_string();
    match db.into() {
        Ex::SqlitePool(e) => rest!(
            sqlx::query_as::<_, HitRow>(SEARCH_SQLITE_SQL)
                .bind(q.fts5.clone())
                .bind(tenant.0)
                .bind(json)
        )
        .fetch(e),
        Ex::Sqlite(e) => rest!(
            sqlx::query_as::<_, HitRow>(SEARCH_SQLITE_SQL)
                .bind(q.fts5.clone())
                .bind(tenant.0)
                .bind(json)
        )
        .fetch(e),
        Ex::PgPool(e) => rest!(
            sqlx::query_as::<_, HitRow>(SEARCH_POSTGRES_SQL)
                .bind(q.tsquery.clone())
                .bind(tenant.0)
                .bind(ids)
        )
        .fetch(e),
        Ex::Pg(e) => rest!(
            sqlx::query_as::<_, HitRow>(SEARCH_POSTGRES_SQL)
                .bind(q.tsquery.clone())
                .bind(tenant.0)
                .bind(ids)
        )
        .fetch(e),
    }
}

#[cfg(test)]
mod tests {
    use futures_util::TryStreamExt as _;
    use qchat_protocol::MessageKind;

    use super::*;
    use crate::db::{self, NewMessage, on};
    use crate::search::Query;

    fn search(q: &str, rooms: &[RoomId]) -> Search {
        let query = Query::parse(q).expect("query");
        Search {
            fts5: query.fts5(),
            tsquery: query.tsquery(),
            rooms: rooms.to_vec(),
            from: None,
            after: i64::MIN,
            before: i64::MAX,
            has_file: false,
            cursor: Cursor::START,
            limit: 100,
        }
    }

    async fn found(pool: &db::Db, t: TenantId, s: &Search) -> Vec<(i64, i64)> {
        let rows: Vec<HitRow> = hits(pool, t, s).try_collect().await.expect("search");
        rows.into_iter().map(|r| (r.room_id, r.seq)).collect()
    }

    /// The index follows every insert, edit and delete of a body, made by
    /// whatever statement: the triggers (SQLite) and the generated column
    /// (PostgreSQL) are what later edits and deletes rely on.
    #[tokio::test]
    async fn the_index_follows_inserts_edits_and_deletes() {
        for test_db in db::testing::each().await {
            the_index_follows_on(&test_db).await;
        }
    }

    async fn the_index_follows_on(pool: &db::Db) {
        let t = db::tenants::create(pool, "acme", false).await.expect("tenant");
        let u = db::users::create(pool, t, "ann", "x").await.expect("user");
        let public = qchat_protocol::RoomKind::Public;
        let a = db::rooms::create(pool, t, "a", public, None).await.expect("room").id;
        let b = db::rooms::create(pool, t, "b", public, None).await.expect("room").id;
        let mut pooled = pool.acquire().await.expect("conn");
        let mut conn = pooled.conn();
        let bodies = [(a, "Deploy on Friday", 10), (b, "deployment notes", 20), (a, "lunch?", 30)];
        for (i, (room, body, ts)) in bodies.into_iter().enumerate() {
            let m = NewMessage {
                tenant: t,
                room,
                sender: Some(u),
                sender_name: "ann".into(),
                client_msg_id: Some(i.to_string()),
                kind: MessageKind::Text,
                body: body.into(),
                ts,
                file: None,
                change: None,
                reply_to: None,
                mentions: None,
            };
            db::messages::append(&mut conn, &m, true).await.expect("append");
        }
        drop(pooled);
        let both = [a, b];
        assert_eq!(found(pool, t, &search("deploy", &both)).await, [(a.0, 1)]);
        // Newest first; a prefix finds both.
        assert_eq!(found(pool, t, &search("DEPLOY*", &both)).await, [(b.0, 1), (a.0, 1)]);
        // Only the rooms given are searched.
        assert_eq!(found(pool, t, &search("deploy*", &[a])).await, [(a.0, 1)]);
        let mut s = search("deploy*", &both);
        s.cursor = Cursor { ts: 20, room: b.0, seq: 1 };
        assert_eq!(found(pool, t, &s).await, [(a.0, 1)]);
        s.cursor = Cursor::START;
        s.before = 20;
        assert_eq!(found(pool, t, &s).await, [(a.0, 1)]);
        s.before = i64::MAX;
        s.has_file = true;
        assert_eq!(found(pool, t, &s).await, []);

        // An edit, as the edit feature will make it: the old words go, the
        // new ones are found at once.
        on!(pool, |e| sqlx::query(
            "update messages set body = 'postponed to Monday' where room_id = $1 and seq = 1"
        )
        .bind(a.0)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))
        .expect("edit");
        assert_eq!(found(pool, t, &search("friday", &both)).await, []);
        assert_eq!(found(pool, t, &search("monday", &both)).await, [(a.0, 1)]);
        // A delete.
        on!(pool, |e| sqlx::query("delete from messages where room_id = $1 and seq = 1")
            .bind(b.0)
            .execute(e)
            .await
            .map(|r| r.rows_affected()))
        .expect("delete");
        assert_eq!(found(pool, t, &search("deployment", &both)).await, []);
        if let db::Db::Sqlite(p) = pool {
            let check: Result<_, sqlx::Error> =
                sqlx::query("insert into messages_fts (messages_fts) values ('integrity-check')")
                    .execute(p)
                    .await;
            check.expect("the index agrees with the table");
        }
    }
}
