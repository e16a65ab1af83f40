//! `files` and `uploads` tables.

use super::rooms::to_u64;
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
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    offer: u64,
) -> Result<FileAccess, sqlx::Error> {
    let row: Option<(i64, String, i64, String, bool)> = on!(db, |e| sqlx::query_as(
        "select o.id, m.body, f.size, f.hash, mb.user_id is not null from offers o
         join messages m on m.room_id = o.room_id and m.seq = o.seq and m.tenant_id = o.tenant_id
         join files f on f.id = o.file_id and f.tenant_id = o.tenant_id
         left join memberships mb on mb.room_id = o.room_id and mb.tenant_id = o.tenant_id
             and mb.user_id = $1
         where o.tenant_id = $2 and o.id = $3",
    )
    .bind(user.0)
    .bind(tenant.0)
    .bind(i(offer))
    .fetch_optional(e)
    .await)?;
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

/// Whether the tenant stores a file that a hash-later upload of `size`
/// bytes starting with `head` might duplicate: same size and the same head
/// (or no head on record, for files stored before heads were kept).
pub(crate) async fn may_hold(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    size: u64,
    head: &str,
) -> Result<bool, sqlx::Error> {
    let row: Option<i32> = on!(db, |e| sqlx::query_scalar(
        "select 1 from files where tenant_id = $1 and size = $2 and (head = $3 or head is null)
         limit 1",
    )
    .bind(tenant.0)
    .bind(i(size))
    .bind(head)
    .fetch_optional(e)
    .await)?;
    Ok(row.is_some())
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

/// Marks an upload as active now (so the stale sweep leaves it alone).
pub(crate) async fn touch_upload(db: impl Into<Ex<'_>>, id: &str) -> Result<(), sqlx::Error> {
    on!(db, |e| sqlx::query("update uploads set updated_at = $1 where id = $2")
        .bind(now_ms())
        .bind(id)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
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
        let r = db::rooms::create(pool, t, "general").await.expect("room");
        let (head, hash) = ("a".repeat(64), "b".repeat(64));
        let mut pooled = pool.acquire().await.expect("conn");
        let mut conn = pooled.conn();
        insert_or_get(&mut conn, t, &hash, 10, Some(&head)).await.expect("file");
        assert!(may_hold(pool, t, 10, &head).await.expect("query"), "same size and head");
        assert!(!may_hold(pool, t, 11, &head).await.expect("query"), "another size");
        assert!(!may_hold(pool, t, 10, &"c".repeat(64)).await.expect("query"), "another head");
        assert!(!may_hold(pool, other, 10, &head).await.expect("query"), "another tenant");
        // A file stored before heads were kept matches on size alone; a head
        // recorded later fills it in and is kept from then on.
        let old = "d".repeat(64);
        insert_or_get(&mut conn, t, &old, 20, None).await.expect("file");
        assert!(may_hold(pool, t, 20, &"e".repeat(64)).await.expect("query"));
        insert_or_get(&mut conn, t, &old, 20, Some(&head)).await.expect("again");
        insert_or_get(&mut conn, t, &old, 20, Some(&"f".repeat(64))).await.expect("again");
        assert!(!may_hold(pool, t, 20, &"e".repeat(64)).await.expect("query"));
        assert!(may_hold(pool, t, 20, &head).await.expect("query"));

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
        let named = |offer| access(pool, TenantId(1), UserId(1), offer);
        assert_eq!(named(4).await.expect("access"), FileAccess::NotMember, "no members here");
        assert_eq!(named(3).await.expect("access"), FileAccess::Missing);
        on!(pool, |e| sqlx::query(
            "insert into users (id, tenant_id, name, password_hash, created_at)
             values (1, 1, 'ann', 'x', 0)"
        )
        .execute(e)
        .await
        .map(|r| r.rows_affected()))
        .expect("user");
        on!(pool, |e| sqlx::query(
            "insert into memberships (tenant_id, room_id, user_id, joined_at) values (1, 1, 1, 0)",
        )
        .execute(e)
        .await
        .map(|r| r.rows_affected()))
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
            access(pool, TenantId(2), UserId(1), 1).await.expect("access"),
            FileAccess::Missing
        );
    }
}
