//! `files` and `uploads` tables.

use super::rooms::RoomLabel;
use super::sql::to_u64;
use super::{Conn, Ex, RoomId, TenantId, UserId, now_ms, on, on_conn};

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An offer of a stored file as a member of its room sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VisibleFile {
    /// The offer's id (the wire's file id).
    pub(crate) id: u64,
    /// The offer's name (its file message's body).
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) hash: String,
}

/// Offer `offer` of the tenant: its room and what it offers. Whether the
/// caller may have it is for the access module to say.
pub(crate) async fn offer(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    offer: u64,
) -> Result<Option<(RoomId, VisibleFile)>, sqlx::Error> {
    let row: Option<(i64, i64, String, i64, String)> = on!(db, |e| sqlx::query_as(
        "select o.room_id, o.id, m.body, f.size, f.hash from offers o
         join messages m on m.room_id = o.room_id and m.seq = o.seq and m.tenant_id = o.tenant_id
         join files f on f.id = o.file_id and f.tenant_id = o.tenant_id
         where o.tenant_id = $1 and o.id = $2",
    )
    .bind(tenant.0)
    .bind(i(offer))
    .fetch_optional(e)
    .await)?;
    Ok(row.map(|(room, id, name, size, hash)| {
        (RoomId(room), VisibleFile { id: to_u64(id), name, size: to_u64(size), hash })
    }))
}

/// The rooms of the tenant that offer stored file (content) `file`.
pub(crate) async fn content_rooms(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    file: u64,
) -> Result<Vec<RoomId>, sqlx::Error> {
    let ids: Vec<i64> = on!(db, |e| {
        sqlx::query_scalar(
        "select distinct room_id from offers where tenant_id = $1 and file_id = $2 order by room_id",
    )
    .bind(tenant.0)
    .bind(i(file))
    .fetch_all(e)
    .await
    })?;
    Ok(ids.into_iter().map(RoomId).collect())
}

/// Records that the file message at `seq` in `room` offers stored file
/// `file`; returns the offer's id. The message must be inserted first.
pub(crate) async fn insert_offer(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    seq: i64,
    file: u64,
) -> Result<u64, sqlx::Error> {
    let id: i64 = on!(db, |e| sqlx::query_scalar(
        "insert into offers (tenant_id, room_id, seq, file_id) values ($1, $2, $3, $4)
         returning id",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(seq)
    .bind(i(file))
    .fetch_one(e)
    .await)?;
    Ok(to_u64(id))
}

/// The tenant's stored file with this hash: `(id, size)`.
pub(crate) async fn by_hash(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    hash: &str,
) -> Result<Option<(u64, u64)>, sqlx::Error> {
    let row: Option<(i64, i64)> = on!(db, |e| sqlx::query_as(
        "select id, size from files where tenant_id = $1 and hash = $2"
    )
    .bind(tenant.0)
    .bind(hash)
    .fetch_optional(e)
    .await)?;
    Ok(row.map(|(id, size)| (to_u64(id), to_u64(size))))
}

/// Stored files of the tenant that a hash-later upload of `size` bytes
/// starting with `head` might duplicate: same size and the same head (or no
/// head on record, for files stored before heads were kept). At most
/// `limit` ids.
pub(crate) async fn may_hold(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    size: u64,
    head: &str,
    limit: u32,
) -> Result<Vec<u64>, sqlx::Error> {
    let ids: Vec<i64> = on!(db, |e| {
        sqlx::query_scalar(
        "select id from files where tenant_id = $1 and size = $2 and (head = $3 or head is null)
         order by id limit $4",
    )
    .bind(tenant.0)
    .bind(i(size))
    .bind(head)
    .bind(i64::from(limit))
    .fetch_all(e)
    .await
    })?;
    Ok(ids.into_iter().map(to_u64).collect())
}

/// The content that `sender`'s file message with this `client_msg_id`
/// offers in the room: `(hash, (file id, size))` (the stored file's id, not
/// the offer's).
pub(crate) async fn shared(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    sender: UserId,
    client_msg_id: &str,
) -> Result<Option<(String, (u64, u64))>, sqlx::Error> {
    let row: Option<(String, i64, i64)> = on!(db, |e| sqlx::query_as(
        "select f.hash, f.id, f.size from messages m join files f on f.id = m.file_id
         where m.tenant_id = $1 and m.room_id = $2 and m.sender_id = $3 and m.client_msg_id = $4",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(sender.0)
    .bind(client_msg_id)
    .fetch_optional(e)
    .await)?;
    Ok(row.map(|(hash, id, size)| (hash, (to_u64(id), to_u64(size)))))
}

/// Inserts the file row if the tenant does not have it yet (recording
/// `head` where the row has none); returns its id.
pub(crate) async fn insert_or_get(
    conn: &mut Conn<'_>,
    tenant: TenantId,
    hash: &str,
    size: u64,
    head: Option<&str>,
) -> Result<u64, sqlx::Error> {
    let id: i64 = on_conn!(conn, |e| {
        sqlx::query(
            "insert into files (tenant_id, hash, size, head, created_at) values ($1, $2, $3, $4, $5)
             on conflict (tenant_id, hash) do update set head = coalesce(files.head, excluded.head)",
        )
        .bind(tenant.0)
        .bind(hash)
        .bind(i(size))
        .bind(head)
        .bind(now_ms())
        .execute(&mut *e)
        .await?;
        sqlx::query_scalar("select id from files where tenant_id = $1 and hash = $2")
            .bind(tenant.0)
            .bind(hash)
            .fetch_one(&mut *e)
            .await?
    });
    Ok(to_u64(id))
}

/// Bytes the tenant stores.
pub(crate) async fn usage(db: impl Into<Ex<'_>>, tenant: TenantId) -> Result<u64, sqlx::Error> {
    // PostgreSQL's sum of bigints is a numeric: cast back.
    let total: Option<i64> = on!(db, |e| sqlx::query_scalar(
        "select cast(sum(size) as bigint) from files where tenant_id = $1"
    )
    .bind(tenant.0)
    .fetch_one(e)
    .await)?;
    Ok(total.map_or(0, to_u64))
}

/// Every stored file `(tenant, hash)`, for the start-up consistency sweep.
pub(crate) async fn all(db: impl Into<Ex<'_>>) -> Result<Vec<(i64, String)>, sqlx::Error> {
    on!(db, |e| sqlx::query_as("select tenant_id, hash from files").fetch_all(e).await)
}

/// An upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upload {
    pub(crate) id: String,
    pub(crate) tenant: TenantId,
    pub(crate) user: UserId,
    pub(crate) room: RoomId,
    /// What the room is called on the wire.
    pub(crate) room_label: RoomLabel,
    pub(crate) user_name: String,
    pub(crate) name: String,
    pub(crate) size: u64,
    /// The declared content hash; `None` for a hash-later upload (its
    /// stream's trailer brings it).
    pub(crate) hash: Option<String>,
}

#[derive(sqlx::FromRow)]
struct UploadRow {
    id: String,
    tenant_id: i64,
    user_id: i64,
    room_id: i64,
    room_name: String,
    room_handle: Option<String>,
    user_name: String,
    name: String,
    size: i64,
    hash: Option<String>,
}

impl From<UploadRow> for Upload {
    fn from(r: UploadRow) -> Self {
        Self {
            id: r.id,
            tenant: TenantId(r.tenant_id),
            user: UserId(r.user_id),
            room: RoomId(r.room_id),
            room_label: RoomLabel {
                id: r.room_handle.unwrap_or_else(|| r.room_name.clone()),
                name: r.room_name,
            },
            user_name: r.user_name,
            name: r.name,
            size: to_u64(r.size),
            hash: r.hash,
        }
    }
}

const UPLOAD_SELECT: &str =
    "select up.id, up.tenant_id, up.user_id, up.room_id, r.name as room_name,
    r.handle as room_handle, u.name as user_name, up.name, up.size, up.hash from uploads up
    join rooms r on r.id = up.room_id and r.tenant_id = up.tenant_id
    join users u on u.id = up.user_id and u.tenant_id = up.tenant_id";

/// A new upload's row.
#[derive(Debug, Clone)]
pub(crate) struct NewUpload<'a> {
    pub(crate) id: &'a str,
    pub(crate) tenant: TenantId,
    pub(crate) user: UserId,
    pub(crate) room: RoomId,
    pub(crate) name: &'a str,
    pub(crate) size: u64,
    /// What the content is known by: its hash, or a hash-later upload's head.
    pub(crate) content: Content<'a>,
}

/// What a new upload's content is known by when it begins.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Content<'a> {
    /// The whole file's BLAKE3, declared in `upload.begin`.
    Hash(&'a str),
    /// Hash later: the BLAKE3 of the first MiB.
    Head(&'a str),
}

impl<'a> Content<'a> {
    /// The declared hash, if the content is known by it.
    fn hash(self) -> Option<&'a str> {
        match self {
            Self::Hash(h) => Some(h),
            Self::Head(_) => None,
        }
    }

    /// The head, if the content is known by it (hash later).
    fn head(self) -> Option<&'a str> {
        match self {
            Self::Head(h) => Some(h),
            Self::Hash(_) => None,
        }
    }
}

pub(crate) async fn create_upload(
    db: impl Into<Ex<'_>>,
    u: &NewUpload<'_>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    on!(db, |e| sqlx::query(
        "insert into uploads (id, tenant_id, user_id, room_id, name, size, hash, head,
         created_at, updated_at) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(u.id)
    .bind(u.tenant.0)
    .bind(u.user.0)
    .bind(u.room.0)
    .bind(u.name)
    .bind(i(u.size))
    .bind(u.content.hash())
    .bind(u.content.head())
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// The caller's upload with this id.
pub(crate) async fn upload(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    id: &str,
) -> Result<Option<Upload>, sqlx::Error> {
    let sql = format!("{UPLOAD_SELECT} where up.tenant_id = $1 and up.user_id = $2 and up.id = $3");
    let row: Option<UploadRow> = on!(db, |e| sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(user.0)
        .bind(id)
        .fetch_optional(e)
        .await)?;
    Ok(row.map(Upload::from))
}

/// The caller's unfinished upload of the same content to the same room
/// (a hash-later one: of the same size and head).
pub(crate) async fn find_upload(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    room: RoomId,
    content: Content<'_>,
    size: u64,
) -> Result<Option<String>, sqlx::Error> {
    let (column, value) = match content {
        Content::Hash(h) => ("hash", h),
        Content::Head(h) => ("head", h),
    };
    let sql = format!(
        "select id from uploads where tenant_id = $1 and user_id = $2 and room_id = $3
         and {column} = $4 and size = $5 order by updated_at desc limit 1"
    );
    on!(db, |e| sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(user.0)
        .bind(room.0)
        .bind(value)
        .bind(i(size))
        .fetch_optional(e)
        .await)
}

/// Marks an upload as active now (so the stale sweep leaves it alone);
/// `false` when it is gone.
pub(crate) async fn touch_upload(db: impl Into<Ex<'_>>, id: &str) -> Result<bool, sqlx::Error> {
    let n = on!(db, |e| sqlx::query("update uploads set updated_at = $1 where id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

pub(crate) async fn delete_upload(db: impl Into<Ex<'_>>, id: &str) -> Result<(), sqlx::Error> {
    on!(db, |e| sqlx::query("delete from uploads where id = $1")
        .bind(id)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Ids of uploads untouched since `before_ms`.
pub(crate) async fn stale_uploads(
    db: impl Into<Ex<'_>>,
    before_ms: i64,
) -> Result<Vec<String>, sqlx::Error> {
    on!(db, |e| sqlx::query_scalar("select id from uploads where updated_at < $1")
        .bind(before_ms)
        .fetch_all(e)
        .await)
}

/// Ids of every upload.
pub(crate) async fn all_uploads(db: impl Into<Ex<'_>>) -> Result<Vec<String>, sqlx::Error> {
    on!(db, |e| sqlx::query_scalar("select id from uploads").fetch_all(e).await)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;

    #[tokio::test]
    async fn hash_later_uploads_and_heads_are_matched() {
        for test_db in db::testing::each().await {
            hash_later_uploads_and_heads_are_matched_on(&test_db).await;
        }
    }

    async fn hash_later_uploads_and_heads_are_matched_on(pool: &db::Db) {
        let t = db::tenants::create(pool, "acme", false).await.expect("tenant");
        let other = db::tenants::create(pool, "other", false).await.expect("tenant");
        let u = db::users::create(pool, t, "ann", "x").await.expect("user");
        let r = db::rooms::create(pool, t, "general", qchat_protocol::RoomKind::Public, None)
            .await
            .expect("room");
        let (head, hash) = ("a".repeat(64), "b".repeat(64));
        let mut pooled = pool.acquire().await.expect("conn");
        let mut conn = pooled.conn();
        insert_or_get(&mut conn, t, &hash, 10, Some(&head)).await.expect("file");
        let holds = async |t, size, head: &str| {
            !may_hold(pool, t, size, head, 8).await.expect("query").is_empty()
        };
        assert!(holds(t, 10, &head).await, "same size and head");
        assert!(!holds(t, 11, &head).await, "another size");
        assert!(!holds(t, 10, &"c".repeat(64)).await, "another head");
        assert!(!holds(other, 10, &head).await, "another tenant");
        // A file stored before heads were kept matches on size alone; a head
        // recorded later fills it in and is kept from then on.
        let old = "d".repeat(64);
        insert_or_get(&mut conn, t, &old, 20, None).await.expect("file");
        assert!(holds(t, 20, &"e".repeat(64)).await);
        insert_or_get(&mut conn, t, &old, 20, Some(&head)).await.expect("again");
        insert_or_get(&mut conn, t, &old, 20, Some(&"f".repeat(64))).await.expect("again");
        assert!(!holds(t, 20, &"e".repeat(64)).await);
        assert!(holds(t, 20, &head).await);

        // A hash-later upload has a head and no hash, and is found by its head.
        let row = NewUpload {
            id: "u1",
            tenant: t,
            user: u,
            room: r.id,
            name: "a.bin",
            size: 10,
            content: Content::Head(&head),
        };
        create_upload(pool, &row).await.expect("upload");
        let found = find_upload(pool, t, u, r.id, Content::Head(&head), 10).await.expect("find");
        assert_eq!(found.as_deref(), Some("u1"));
        let by_hash = find_upload(pool, t, u, r.id, Content::Hash(&head), 10).await.expect("find");
        assert_eq!(by_hash, None, "a head is not a hash");
        let up = upload(pool, t, u, "u1").await.expect("load").expect("row");
        assert_eq!(up.hash, None);
    }

    /// Migration 0005 gives every file message of an older database an
    /// offer: the first offer of each file keeps the file's id (so ids
    /// handed out before still work), the others are numbered above every
    /// file id, in commit order, and so are new offers. On both backends.
    #[tokio::test]
    async fn offers_migration_keeps_old_ids_for_first_offers() {
        for backend in [db::Backend::Sqlite, db::Backend::Postgres] {
            let test_db = db::testing::unmigrated(backend).await;
            offers_migration_keeps_old_ids_on(&test_db).await;
        }
    }

    async fn offers_migration_keeps_old_ids_on(pool: &db::Db) {
        match pool {
            db::Db::Sqlite(p) => db::MIGRATOR.run_to(4, p).await,
            db::Db::Postgres(p) => db::PG_MIGRATOR.run_to(4, p).await,
        }
        .expect("migrate to 0004");
        let old = "insert into tenants (id, name, created_at) values (1, 'acme', 0);
            insert into rooms (id, tenant_id, name, last_seq, created_at) values
                (1, 1, 'general', 3, 0), (2, 1, 'board', 1, 0);
            insert into files (id, tenant_id, hash, size, created_at) values
                (1, 1, 'h1', 5, 0), (2, 1, 'h2', 5, 0), (3, 1, 'h3', 5, 0);
            insert into messages (tenant_id, room_id, seq, sender_name, kind, body, ts, file_id)
                values (1, 1, 1, 'ann', 'file', 'first.txt', 10, 1),
                       (1, 1, 2, 'ann', 'file', 'later.txt', 30, 1),
                       (1, 1, 3, 'ann', 'file', 'other.txt', 40, 2),
                       (1, 2, 1, 'bob', 'file', 'board.txt', 20, 1);";
        on!(pool, |e| sqlx::raw_sql(old).execute(e).await.map(|r| r.rows_affected()))
            .expect("old rows");
        pool.migrate().await.expect("migrate");
        let offers: Vec<(i64, i64, i64, i64)> = on!(pool, |e| sqlx::query_as(
            "select id, room_id, seq, file_id from offers order by id"
        )
        .fetch_all(e)
        .await)
        .expect("offers");
        // File 3 has no offer (its room was deleted, say): 1 and 2 keep
        // their ids, the rest start above 3, oldest first.
        assert_eq!(offers, [(1, 1, 1, 1), (2, 1, 3, 2), (4, 2, 1, 1), (5, 1, 2, 1)]);
        on!(pool, |e| sqlx::query(
            "insert into messages (tenant_id, room_id, seq, sender_name, kind, body, ts, file_id)
             values (1, 2, 2, 'bob', 'file', 'new.txt', 50, 3)",
        )
        .execute(e)
        .await
        .map(|r| r.rows_affected()))
        .expect("message");
        let id = insert_offer(pool, TenantId(1), RoomId(2), 2, 3).await.expect("offer");
        assert_eq!(id, 6);
        // Each offer names its own room and the name it was offered under
        // (who may fetch it is for access to say: its room's readers).
        let named = async |offer| {
            let found = super::offer(pool, TenantId(1), offer).await.expect("offer");
            found.map(|(room, f)| (room.0, f.id, f.name, f.hash))
        };
        assert_eq!(named(3).await, None, "no offer 3");
        assert_eq!(named(4).await, Some((2, 4, "board.txt".into(), "h1".into())));
        assert_eq!(named(5).await, Some((1, 5, "later.txt".into(), "h1".into())));
        assert_eq!(named(1).await, Some((1, 1, "first.txt".into(), "h1".into())));
        assert_eq!(named(6).await, Some((2, 6, "new.txt".into(), "h3".into())));
        assert_eq!(
            offer(pool, TenantId(2), 1).await.expect("offer"),
            None,
            "another tenant's offer"
        );
        // The migrated rooms got ids and are public; the offers' content
        // is found by room.
        let handles: Vec<(String, String)> =
            on!(pool, |e| sqlx::query_as("select handle, kind from rooms order by id")
                .fetch_all(e)
                .await)
            .expect("rooms");
        assert!(handles.iter().all(|(h, k)| qchat_protocol::valid_room_id(h) && k == "public"));
        let rooms = content_rooms(pool, TenantId(1), 1).await.expect("rooms");
        assert_eq!(rooms, [RoomId(1), RoomId(2)]);
    }
}
