//! `messages` table: append with a gap-free seq, keyset pagination.

use qchat_protocol::{FileInfo, Message, MessageKind};
use sqlx::{SqliteConnection, SqliteExecutor};

use super::rooms::to_u64;
use super::{RoomId, TenantId, UserId};

/// The keyset query behind the `history` op, exactly as the server runs it.
/// Parameters in order: tenant id, room id, `before_seq` (exclusive), limit
/// (the server asks for one more row than the page to learn whether older
/// ones exist). Columns: seq, sender_name, client_msg_id, kind, body, ts,
/// file_id, file_size, file_hash. Public so the history benchmark can run the
/// same statement directly on the database.
pub const HISTORY_SQL: &str = "select m.seq, m.sender_name, m.client_msg_id, m.kind, m.body, m.ts,
                m.file_id, f.size as file_size, f.hash as file_hash
         from messages m left join files f on f.id = m.file_id and f.tenant_id = m.tenant_id
         where m.tenant_id = ? and m.room_id = ? and m.seq < ? order by m.seq desc limit ?";

/// The insert that stores a message, exactly as the writer runs it (after it
/// has taken `seq` from `rooms.last_seq`). Parameters in order: tenant id,
/// room id, seq, sender id, sender name, client_msg_id, kind (`text`, `file`
/// or `system`), body, ts (ms since the epoch), file id. Public so the
/// history benchmark can fill a room with rows the server would have written.
pub const INSERT_MESSAGE_SQL: &str = "insert into messages (tenant_id, room_id, seq, sender_id, sender_name, client_msg_id, kind, body, ts, file_id)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";

/// A message to append.
#[derive(Debug, Clone)]
pub(crate) struct NewMessage {
    pub(crate) tenant: TenantId,
    pub(crate) room: RoomId,
    pub(crate) sender: Option<UserId>,
    pub(crate) sender_name: String,
    pub(crate) client_msg_id: Option<String>,
    pub(crate) kind: MessageKind,
    pub(crate) body: String,
    pub(crate) ts: i64,
    /// For file messages: the content to record (and the upload it finishes).
    pub(crate) file: Option<FileAttach>,
}

/// The file a file message offers; its row is inserted (once per tenant and
/// hash) in the same transaction as the message.
#[derive(Debug, Clone)]
pub(crate) struct FileAttach {
    pub(crate) hash: String,
    pub(crate) size: u64,
    /// The upload this message completes; its row is deleted in the same
    /// transaction.
    pub(crate) upload_id: Option<String>,
}

/// What [`append`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AppendOutcome {
    /// Stored with this seq (and, for a file message, this file id).
    New { seq: u64, file_id: Option<u64> },
    /// The same sender had already stored this `client_msg_id` in this room.
    Duplicate { seq: u64, ts: i64 },
}

/// Appends `m` inside the caller's transaction: finds an earlier copy by
/// idempotency key, else takes `last_seq + 1` from the room and inserts. The
/// caller wraps each call in a savepoint so a failure cannot leave a gap.
pub(crate) async fn append(
    conn: &mut SqliteConnection,
    m: &NewMessage,
) -> Result<Option<AppendOutcome>, sqlx::Error> {
    if let (Some(sender), Some(cmid)) = (m.sender, &m.client_msg_id) {
        let prior: Option<(i64, i64)> = sqlx::query_as(
            "select seq, ts from messages
             where tenant_id = ? and room_id = ? and sender_id = ? and client_msg_id = ?",
        )
        .bind(m.tenant.0)
        .bind(m.room.0)
        .bind(sender.0)
        .bind(cmid)
        .fetch_optional(&mut *conn)
        .await?;
        if let Some((seq, ts)) = prior {
            return Ok(Some(AppendOutcome::Duplicate { seq: to_u64(seq), ts }));
        }
    }
    let seq: Option<i64> = sqlx::query_scalar(
        "update rooms set last_seq = last_seq + 1 where tenant_id = ? and id = ? returning last_seq",
    )
    .bind(m.tenant.0)
    .bind(m.room.0)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(seq) = seq else {
        return Ok(None);
    };
    let file_id = match &m.file {
        Some(f) => {
            let id = super::files::insert_or_get(&mut *conn, m.tenant, &f.hash, f.size).await?;
            if let Some(upload) = &f.upload_id {
                super::files::delete_upload(&mut *conn, upload).await?;
            }
            Some(id)
        }
        None => None,
    };
    sqlx::query(INSERT_MESSAGE_SQL)
        .bind(m.tenant.0)
        .bind(m.room.0)
        .bind(seq)
        .bind(m.sender.map(|u| u.0))
        .bind(&m.sender_name)
        .bind(m.client_msg_id.as_deref())
        .bind(m.kind.as_str())
        .bind(&m.body)
        .bind(m.ts)
        .bind(file_id.map(|id| i64::try_from(id).unwrap_or(i64::MAX)))
        .execute(&mut *conn)
        .await?;
    Ok(Some(AppendOutcome::New { seq: to_u64(seq), file_id }))
}

#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    sender_name: String,
    client_msg_id: Option<String>,
    kind: String,
    body: String,
    ts: i64,
    file_id: Option<i64>,
    file_size: Option<i64>,
    file_hash: Option<String>,
}

impl Row {
    fn into_message(self, room: &str) -> Message {
        let file = match (self.file_id, self.file_size, self.file_hash) {
            (Some(id), Some(size), Some(hash)) => {
                Some(FileInfo { id: to_u64(id), name: self.body.clone(), size: to_u64(size), hash })
            }
            _ => None,
        };
        Message {
            room: room.to_owned(),
            seq: to_u64(self.seq),
            sender: self.sender_name,
            ts: self.ts,
            kind: MessageKind::parse(&self.kind).unwrap_or(MessageKind::System),
            body: self.body,
            client_msg_id: self.client_msg_id,
            file,
        }
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Up to `limit` messages with seq < `before`, newest first from the database,
/// returned in ascending order, plus whether older ones exist.
pub(crate) async fn before(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    room: RoomId,
    room_name: &str,
    before: u64,
    limit: u32,
) -> Result<(Vec<Message>, bool), sqlx::Error> {
    let mut rows: Vec<Row> = sqlx::query_as(HISTORY_SQL)
        .bind(tenant.0)
        .bind(room.0)
        .bind(clamp(before))
        .bind(i64::from(limit) + 1)
        .fetch_all(db)
        .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    rows.reverse();
    Ok((rows.into_iter().map(|r| r.into_message(room_name)).collect(), more))
}

/// Up to `limit` messages with seq > `after` in ascending order, plus whether
/// newer ones exist.
pub(crate) async fn after(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    room: RoomId,
    room_name: &str,
    after: u64,
    limit: u32,
) -> Result<(Vec<Message>, bool), sqlx::Error> {
    let mut rows: Vec<Row> = sqlx::query_as(
        "select m.seq, m.sender_name, m.client_msg_id, m.kind, m.body, m.ts,
                m.file_id, f.size as file_size, f.hash as file_hash
         from messages m left join files f on f.id = m.file_id and f.tenant_id = m.tenant_id
         where m.tenant_id = ? and m.room_id = ? and m.seq > ? order by m.seq asc limit ?",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(clamp(after))
    .bind(i64::from(limit) + 1)
    .fetch_all(db)
    .await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    Ok((rows.into_iter().map(|r| r.into_message(room_name)).collect(), more))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;

    #[tokio::test]
    async fn append_is_gap_free_idempotent_and_pages() {
        let (pool, _dir) = db::test_pool().await;
        let t = db::create_tenant(&pool, "acme", false).await.expect("tenant");
        let u = db::create_user(&pool, t, "ann", "x").await.expect("user");
        let r = db::create_room(&pool, t, "general").await.expect("room");
        let mut conn = pool.acquire().await.expect("conn");
        let mk = |cmid: &str| NewMessage {
            tenant: t,
            room: r.id,
            sender: Some(u),
            sender_name: "ann".into(),
            client_msg_id: Some(cmid.into()),
            kind: MessageKind::Text,
            body: format!("body {cmid}"),
            ts: 1,
            file: None,
        };
        for i in 0..10 {
            let out = append(&mut conn, &mk(&i.to_string())).await.expect("append");
            assert_eq!(out, Some(AppendOutcome::New { seq: i + 1, file_id: None }));
        }
        let again = append(&mut conn, &mk("3")).await.expect("append");
        assert_eq!(again, Some(AppendOutcome::Duplicate { seq: 4, ts: 1 }));

        let (page, more) = before(&pool, t, r.id, "general", u64::MAX, 4).await.expect("page");
        assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![7, 8, 9, 10]);
        assert!(more);
        let (page, more) = before(&pool, t, r.id, "general", 3, 4).await.expect("page");
        assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![1, 2]);
        assert!(!more);
        let (page, more) = after(&pool, t, r.id, "general", 8, 5).await.expect("page");
        assert_eq!(page.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![9, 10]);
        assert!(!more);

        // Another tenant's id for the same room sees nothing.
        let other = db::create_tenant(&pool, "other", false).await.expect("tenant");
        let (page, _) = before(&pool, other, r.id, "general", u64::MAX, 50).await.expect("page");
        assert!(page.is_empty());
    }
}
