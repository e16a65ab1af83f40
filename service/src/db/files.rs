//! `files` and `uploads` tables.

use sqlx::SqliteExecutor;

use super::rooms::to_u64;
use super::{RoomId, TenantId, UserId, now_ms};

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

/// Where an offer id stands for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileAccess {
    /// Offered in a room the user is in.
    Visible(VisibleFile),
    /// Offered in a room the user is not in.
    NotMember,
    /// No such offer in this tenant.
    Missing,
}

/// What offer `offer` of the tenant is to `user`.
pub(crate) async fn access(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    user: UserId,
    offer: u64,
) -> Result<FileAccess, sqlx::Error> {
    let row: Option<(i64, String, i64, String, bool)> = sqlx::query_as(
        "select o.id, m.body, f.size, f.hash, mb.user_id is not null from offers o
         join messages m on m.room_id = o.room_id and m.seq = o.seq and m.tenant_id = o.tenant_id
         join files f on f.id = o.file_id and f.tenant_id = o.tenant_id
         left join memberships mb on mb.room_id = o.room_id and mb.tenant_id = o.tenant_id
             and mb.user_id = ?
         where o.tenant_id = ? and o.id = ?",
    )
    .bind(user.0)
    .bind(tenant.0)
    .bind(i(offer))
    .fetch_optional(db)
    .await?;
    Ok(match row {
        Some((id, name, size, hash, true)) => {
            FileAccess::Visible(VisibleFile { id: to_u64(id), name, size: to_u64(size), hash })
        }
        Some(_) => FileAccess::NotMember,
        None => FileAccess::Missing,
    })
}

/// Records that the file message at `seq` in `room` offers stored file
/// `file`; returns the offer's id. The message must be inserted first.
pub(crate) async fn insert_offer(
    conn: &mut sqlx::SqliteConnection,
    tenant: TenantId,
    room: RoomId,
    seq: i64,
    file: u64,
) -> Result<u64, sqlx::Error> {
    let id: i64 = sqlx::query_scalar(
        "insert into offers (tenant_id, room_id, seq, file_id) values (?, ?, ?, ?) returning id",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(seq)
    .bind(i(file))
    .fetch_one(conn)
    .await?;
    Ok(to_u64(id))
}

/// The tenant's stored file with this hash: `(id, size)`.
pub(crate) async fn by_hash(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    hash: &str,
) -> Result<Option<(u64, u64)>, sqlx::Error> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("select id, size from files where tenant_id = ? and hash = ?")
            .bind(tenant.0)
            .bind(hash)
            .fetch_optional(db)
            .await?;
    Ok(row.map(|(id, size)| (to_u64(id), to_u64(size))))
}

/// Whether the tenant stores a file that a hash-later upload of `size`
/// bytes starting with `head` might duplicate: same size and the same head
/// (or no head on record, for files stored before heads were kept).
pub(crate) async fn may_hold(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    size: u64,
    head: &str,
) -> Result<bool, sqlx::Error> {
    let row: Option<i64> = sqlx::query_scalar(
        "select 1 from files where tenant_id = ? and size = ? and (head = ? or head is null)
         limit 1",
    )
    .bind(tenant.0)
    .bind(i(size))
    .bind(head)
    .fetch_optional(db)
    .await?;
    Ok(row.is_some())
}

/// The content that `sender`'s file message with this `client_msg_id`
/// offers in the room: `(hash, (file id, size))` (the stored file's id, not
/// the offer's).
pub(crate) async fn shared(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    room: RoomId,
    sender: UserId,
    client_msg_id: &str,
) -> Result<Option<(String, (u64, u64))>, sqlx::Error> {
    let row: Option<(String, i64, i64)> = sqlx::query_as(
        "select f.hash, f.id, f.size from messages m join files f on f.id = m.file_id
         where m.tenant_id = ? and m.room_id = ? and m.sender_id = ? and m.client_msg_id = ?",
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(sender.0)
    .bind(client_msg_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(hash, id, size)| (hash, (to_u64(id), to_u64(size)))))
}

/// Inserts the file row if the tenant does not have it yet (recording
/// `head` where the row has none); returns its id.
pub(crate) async fn insert_or_get(
    conn: &mut sqlx::SqliteConnection,
    tenant: TenantId,
    hash: &str,
    size: u64,
    head: Option<&str>,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "insert into files (tenant_id, hash, size, head, created_at) values (?, ?, ?, ?, ?)
         on conflict (tenant_id, hash) do update set head = coalesce(files.head, excluded.head)",
    )
    .bind(tenant.0)
    .bind(hash)
    .bind(i(size))
    .bind(head)
    .bind(now_ms())
    .execute(&mut *conn)
    .await?;
    let id: i64 = sqlx::query_scalar("select id from files where tenant_id = ? and hash = ?")
        .bind(tenant.0)
        .bind(hash)
        .fetch_one(&mut *conn)
        .await?;
    Ok(to_u64(id))
}

/// Bytes the tenant stores.
pub(crate) async fn usage(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
) -> Result<u64, sqlx::Error> {
    let total: Option<i64> = sqlx::query_scalar("select sum(size) from files where tenant_id = ?")
        .bind(tenant.0)
        .fetch_one(db)
        .await?;
    Ok(total.map_or(0, to_u64))
}

/// Every stored file `(tenant, hash)`, for the start-up consistency sweep.
pub(crate) async fn all(db: impl SqliteExecutor<'_>) -> Result<Vec<(i64, String)>, sqlx::Error> {
    sqlx::query_as("select tenant_id, hash from files").fetch_all(db).await
}

/// An upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Upload {
    pub(crate) id: String,
    pub(crate) tenant: TenantId,
    pub(crate) user: UserId,
    pub(crate) room: RoomId,
    pub(crate) room_name: String,
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
            room_name: r.room_name,
            user_name: r.user_name,
            name: r.name,
            size: to_u64(r.size),
            hash: r.hash,
        }
    }
}

const UPLOAD_SELECT: &str =
    "select up.id, up.tenant_id, up.user_id, up.room_id, r.name as room_name,
    u.name as user_name, up.name, up.size, up.hash from uploads up
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
    db: impl SqliteExecutor<'_>,
    u: &NewUpload<'_>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "insert into uploads (id, tenant_id, user_id, room_id, name, size, hash, head,
         created_at, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
    .bind(now)
    .execute(db)
    .await?;
    Ok(())
}

/// The caller's upload with this id.
pub(crate) async fn upload(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    user: UserId,
    id: &str,
) -> Result<Option<Upload>, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(format!(
        "{UPLOAD_SELECT} where up.tenant_id = ? and up.user_id = ? and up.id = ?"
    ));
    let row: Option<UploadRow> =
        sqlx::query_as(sql).bind(tenant.0).bind(user.0).bind(id).fetch_optional(db).await?;
    Ok(row.map(Upload::from))
}

/// The caller's unfinished upload of the same content to the same room
/// (a hash-later one: of the same size and head).
pub(crate) async fn find_upload(
    db: impl SqliteExecutor<'_>,
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
    let sql = sqlx::AssertSqlSafe(format!(
        "select id from uploads where tenant_id = ? and user_id = ? and room_id = ? and {column} = ?
         and size = ? order by updated_at desc limit 1"
    ));
    sqlx::query_scalar(sql)
        .bind(tenant.0)
        .bind(user.0)
        .bind(room.0)
        .bind(value)
        .bind(i(size))
        .fetch_optional(db)
        .await
}

/// Marks an upload as active now (so the stale sweep leaves it alone).
pub(crate) async fn touch_upload(db: impl SqliteExecutor<'_>, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("update uploads set updated_at = ? where id = ?")
        .bind(now_ms())
        .bind(id)
        .execute(db)
        .await?;
    Ok(())
}

pub(crate) async fn delete_upload(
    db: impl SqliteExecutor<'_>,
    id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from uploads where id = ?").bind(id).execute(db).await?;
    Ok(())
}

/// Ids of uploads untouched since `before_ms`.
pub(crate) async fn stale_uploads(
    db: impl SqliteExecutor<'_>,
    before_ms: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("select id from uploads where updated_at < ?")
        .bind(before_ms)
        .fetch_all(db)
        .await
}

/// Ids of every upload.
pub(crate) async fn all_uploads(db: impl SqliteExecutor<'_>) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("select id from uploads").fetch_all(db).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;

    #[tokio::test]
    async fn hash_later_uploads_and_heads_are_matched() {
        let (pool, _dir) = db::test_pool().await;
        let t = db::tenants::create(&pool, "acme", false).await.expect("tenant");
        let other = db::tenants::create(&pool, "other", false).await.expect("tenant");
        let u = db::users::create(&pool, t, "ann", "x").await.expect("user");
        let r = db::rooms::create(&pool, t, "general").await.expect("room");
        let (head, hash) = ("a".repeat(64), "b".repeat(64));
        let mut conn = pool.acquire().await.expect("conn");
        insert_or_get(&mut conn, t, &hash, 10, Some(&head)).await.expect("file");
        assert!(may_hold(&pool, t, 10, &head).await.expect("query"), "same size and head");
        assert!(!may_hold(&pool, t, 11, &head).await.expect("query"), "another size");
        assert!(!may_hold(&pool, t, 10, &"c".repeat(64)).await.expect("query"), "another head");
        assert!(!may_hold(&pool, other, 10, &head).await.expect("query"), "another tenant");
        // A file stored before heads were kept matches on size alone; a head
        // recorded later fills it in and is kept from then on.
        let old = "d".repeat(64);
        insert_or_get(&mut conn, t, &old, 20, None).await.expect("file");
        assert!(may_hold(&pool, t, 20, &"e".repeat(64)).await.expect("query"));
        insert_or_get(&mut conn, t, &old, 20, Some(&head)).await.expect("again");
        insert_or_get(&mut conn, t, &old, 20, Some(&"f".repeat(64))).await.expect("again");
        assert!(!may_hold(&pool, t, 20, &"e".repeat(64)).await.expect("query"));
        assert!(may_hold(&pool, t, 20, &head).await.expect("query"));

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
        create_upload(&pool, &row).await.expect("upload");
        let found = find_upload(&pool, t, u, r.id, Content::Head(&head), 10).await.expect("find");
        assert_eq!(found.as_deref(), Some("u1"));
        let by_hash = find_upload(&pool, t, u, r.id, Content::Hash(&head), 10).await.expect("find");
        assert_eq!(by_hash, None, "a head is not a hash");
        let up = upload(&pool, t, u, "u1").await.expect("load").expect("row");
        assert_eq!(up.hash, None);
    }

    /// Migration 0005 gives every file message of an older database an
    /// offer: the first offer of each file keeps the file's id (so ids
    /// handed out before still work), the others are numbered above every
    /// file id, in commit order, and so are new offers.
    #[tokio::test]
    async fn offers_migration_keeps_old_ids_for_first_offers() {
        use std::str::FromStr as _;
        let dir = tempfile::tempdir().expect("tempdir");
        let opts = sqlx::sqlite::SqliteConnectOptions::from_str("sqlite://")
            .expect("options")
            .filename(dir.path().join("old.db"))
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.expect("open");
        db::MIGRATOR.run_to(4, &pool).await.expect("migrate to 0004");
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
        sqlx::raw_sql(old).execute(&pool).await.expect("old rows");
        db::MIGRATOR.run(&pool).await.expect("migrate");
        let offers: Vec<(i64, i64, i64, i64)> =
            sqlx::query_as("select id, room_id, seq, file_id from offers order by id")
                .fetch_all(&pool)
                .await
                .expect("offers");
        // File 3 has no offer (its room was deleted, say): 1 and 2 keep
        // their ids, the rest start above 3, oldest first.
        assert_eq!(offers, [(1, 1, 1, 1), (2, 1, 3, 2), (4, 2, 1, 1), (5, 1, 2, 1)]);
        let mut conn = pool.acquire().await.expect("conn");
        sqlx::query(
            "insert into messages (tenant_id, room_id, seq, sender_name, kind, body, ts, file_id)
             values (1, 2, 2, 'bob', 'file', 'new.txt', 50, 3)",
        )
        .execute(&mut *conn)
        .await
        .expect("message");
        let id = insert_offer(&mut conn, TenantId(1), RoomId(2), 2, 3).await.expect("offer");
        assert_eq!(id, 6);
        let named = |offer| access(&pool, TenantId(1), UserId(1), offer);
        assert_eq!(named(4).await.expect("access"), FileAccess::NotMember, "no members here");
        assert_eq!(named(3).await.expect("access"), FileAccess::Missing);
        sqlx::query("insert into users (id, tenant_id, name, password_hash, created_at) values (1, 1, 'ann', 'x', 0)")
            .execute(&pool)
            .await
            .expect("user");
        sqlx::query(
            "insert into memberships (tenant_id, room_id, user_id, joined_at) values (1, 1, 1, 0)",
        )
        .execute(&pool)
        .await
        .expect("member");
        let FileAccess::Visible(f) = named(5).await.expect("access") else {
            panic!("a member sees the offer");
        };
        assert_eq!((f.id, f.name.as_str(), f.hash.as_str()), (5, "later.txt", "h1"));
        assert_eq!(
            named(1).await.expect("access"),
            FileAccess::Visible(VisibleFile {
                id: 1,
                name: "first.txt".into(),
                size: 5,
                hash: "h1".into(),
            })
        );
        assert_eq!(named(6).await.expect("access"), FileAccess::NotMember);
        assert_eq!(
            access(&pool, TenantId(2), UserId(1), 1).await.expect("access"),
            FileAccess::Missing
        );
    }
}
