//! `files` and `uploads` tables.

use sqlx::SqliteExecutor;

use super::rooms::to_u64;
use super::{RoomId, TenantId, UserId, now_ms};

fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A stored file as a member of one of its rooms sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VisibleFile {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) size: u64,
    pub(crate) hash: String,
}

/// Where a file id stands for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FileAccess {
    /// Offered in a room the user is in.
    Visible(VisibleFile),
    /// The tenant stores it, but only in rooms the user is not in.
    NotMember,
    /// No such file in this tenant.
    Missing,
}

pub(crate) async fn access(
    db: impl SqliteExecutor<'_> + Copy,
    tenant: TenantId,
    user: UserId,
    file: u64,
) -> Result<FileAccess, sqlx::Error> {
    let row: Option<(i64, String, i64, String)> = sqlx::query_as(
        "select f.id, m.body, f.size, f.hash from files f
         join messages m on m.file_id = f.id and m.tenant_id = f.tenant_id
         join memberships mb on mb.room_id = m.room_id and mb.tenant_id = f.tenant_id and mb.user_id = ?
         where f.tenant_id = ? and f.id = ? order by m.seq desc limit 1",
    )
    .bind(user.0)
    .bind(tenant.0)
    .bind(i(file))
    .fetch_optional(db)
    .await?;
    if let Some((id, name, size, hash)) = row {
        return Ok(FileAccess::Visible(VisibleFile {
            id: to_u64(id),
            name,
            size: to_u64(size),
            hash,
        }));
    }
    let exists: Option<i64> =
        sqlx::query_scalar("select id from files where tenant_id = ? and id = ?")
            .bind(tenant.0)
            .bind(i(file))
            .fetch_optional(db)
            .await?;
    Ok(if exists.is_some() { FileAccess::NotMember } else { FileAccess::Missing })
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

/// Inserts the file row if the tenant does not have it yet; returns its id.
pub(crate) async fn insert_or_get(
    conn: &mut sqlx::SqliteConnection,
    tenant: TenantId,
    hash: &str,
    size: u64,
) -> Result<u64, sqlx::Error> {
    sqlx::query(
        "insert into files (tenant_id, hash, size, created_at) values (?, ?, ?, ?)
         on conflict (tenant_id, hash) do nothing",
    )
    .bind(tenant.0)
    .bind(hash)
    .bind(i(size))
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
    pub(crate) hash: String,
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
    hash: String,
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
    pub(crate) hash: &'a str,
}

pub(crate) async fn create_upload(
    db: impl SqliteExecutor<'_>,
    u: &NewUpload<'_>,
) -> Result<(), sqlx::Error> {
    let now = now_ms();
    sqlx::query(
        "insert into uploads (id, tenant_id, user_id, room_id, name, size, hash, created_at, updated_at)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(u.id)
    .bind(u.tenant.0)
    .bind(u.user.0)
    .bind(u.room.0)
    .bind(u.name)
    .bind(i(u.size))
    .bind(u.hash)
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

/// The caller's unfinished upload of the same content to the same room.
pub(crate) async fn find_upload(
    db: impl SqliteExecutor<'_>,
    tenant: TenantId,
    user: UserId,
    room: RoomId,
    hash: &str,
    size: u64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select id from uploads where tenant_id = ? and user_id = ? and room_id = ? and hash = ? and size = ?
         order by updated_at desc limit 1",
    )
    .bind(tenant.0)
    .bind(user.0)
    .bind(room.0)
    .bind(hash)
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
