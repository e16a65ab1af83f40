//! `rooms` and `memberships` tables: rooms, their settings, who is in them.
//! Roles, invitations and bans are in `members`.

use qchat_protocol::{ROOM_ID_HEX, ROOM_ID_PREFIX, Role, RoomInfo, RoomKind};

use super::sql::to_u64;
use super::{Conn, Counts, DbError, Ex, RoomId, TenantId, UserId, now_ms, on, on_conn};

/// One user's standing in one room, as stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Standing {
    /// The member's role; `None` when not a member.
    pub(crate) role: Option<Role>,
    /// The member's read marker; `None` when not a member.
    pub(crate) read_seq: Option<u64>,
    /// Invited and not yet joined.
    pub(crate) invited: bool,
    /// Banned from the room.
    pub(crate) banned: bool,
    /// An admin of the room's tenant.
    pub(crate) admin: bool,
}

/// A room row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Room {
    pub(crate) id: RoomId,
    /// What requests and messages call it: a public room's name, a private
    /// room's or a DM's handle.
    pub(crate) name: String,
    /// `+` and 16 hex digits; never changes.
    pub(crate) handle: String,
    pub(crate) kind: RoomKind,
    /// The name a private room was given.
    pub(crate) title: Option<String>,
    pub(crate) topic: String,
    pub(crate) archived: bool,
    pub(crate) last_seq: u64,
}

/// How a room is called on the wire: the `room` and `room_id` of its
/// messages and `lagged` events.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct RoomLabel {
    pub(crate) name: String,
    pub(crate) id: String,
}

impl Room {
    pub(crate) fn label(&self) -> RoomLabel {
        RoomLabel { name: self.name.clone(), id: self.handle.clone() }
    }

    /// The name people know the room by (a private room's title).
    pub(crate) fn display_name(&self) -> &str {
        self.title.as_deref().unwrap_or(&self.name)
    }
}

/// The columns [`Row`] reads, for a `rooms r` in the query.
pub(super) const ROOM_COLUMNS: &str =
    "r.id, r.name, r.handle, r.kind, r.title, r.topic, r.archived, r.last_seq";

#[derive(sqlx::FromRow)]
pub(super) struct Row {
    id: i64,
    name: String,
    handle: Option<String>,
    kind: String,
    title: Option<String>,
    topic: String,
    archived: bool,
    last_seq: i64,
}

impl From<Row> for Room {
    fn from(r: Row) -> Self {
        Self {
            id: RoomId(r.id),
            // Rooms always get a handle; a missing one (a row written by an
            // older binary after the migration) falls back to the name.
            handle: r.handle.unwrap_or_else(|| r.name.clone()),
            name: r.name,
            kind: RoomKind::parse(&r.kind).unwrap_or(RoomKind::Private),
            title: r.title,
            topic: r.topic,
            archived: r.archived,
            last_seq: to_u64(r.last_seq),
        }
    }
}

/// A new room handle: `+` and 16 random lower-case hex digits.
pub(crate) fn new_handle() -> String {
    let mut raw = [0u8; ROOM_ID_HEX / 2];
    rand::Rng::fill_bytes(&mut rand::rng(), &mut raw);
    format!("{ROOM_ID_PREFIX}{}", hex::encode(raw))
}

/// Creates a public or private room named `name` (a private room's
/// `name` column is its handle, its name goes to `title`), made by
/// `creator` (counted against the per-user room quota; `None` for the
/// operator's).
pub(crate) async fn create(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    name: &str,
    kind: RoomKind,
    creator: Option<UserId>,
) -> Result<Room, DbError> {
    let handle = new_handle();
    let (column_name, title) = match kind {
        RoomKind::Public => (name.to_owned(), None),
        RoomKind::Private | RoomKind::Dm => (handle.clone(), Some(name.to_owned())),
    };
    let id: i64 = on!(db, |e| sqlx::query_scalar(
        "insert into rooms (tenant_id, name, handle, kind, title, created_at, created_by)
         values ($1, $2, $3, $4, $5, $6, $7) returning id",
    )
    .bind(tenant.0)
    .bind(&column_name)
    .bind(&handle)
    .bind(kind.as_str())
    .bind(&title)
    .bind(now_ms())
    .bind(creator.map(|u| u.0))
    .fetch_one(e)
    .await)
    .map_err(DbError::from_insert)?;
    Ok(Room {
        id: RoomId(id),
        name: column_name,
        handle,
        kind,
        title,
        topic: String::new(),
        archived: false,
        last_seq: 0,
    })
}

/// Creates the DM whose members' sorted ids are `dm_key`, opened by
/// `opener` (counted against the per-user DM quota); `Conflict` when it
/// exists (someone opened it meanwhile).
pub(crate) async fn create_dm(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    dm_key: &str,
    opener: UserId,
) -> Result<Room, DbError> {
    let handle = new_handle();
    let id: i64 = on!(db, |e| sqlx::query_scalar(
        "insert into rooms (tenant_id, name, handle, kind, dm_key, created_at, created_by)
         values ($1, $2, $2, 'dm', $3, $4, $5) returning id",
    )
    .bind(tenant.0)
    .bind(&handle)
    .bind(dm_key)
    .bind(now_ms())
    .bind(opener.0)
    .fetch_one(e)
    .await)
    .map_err(DbError::from_insert)?;
    Ok(Room {
        id: RoomId(id),
        name: handle.clone(),
        handle,
        kind: RoomKind::Dm,
        title: None,
        topic: String::new(),
        archived: false,
        last_seq: 0,
    })
}

/// Rooms (DMs: `dms`) of the tenant that `user` created or opened,
/// disabled ones included.
pub(crate) async fn count_created_by(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
    dms: bool,
) -> Result<u64, sqlx::Error> {
    let n: i64 = on!(db, |e| sqlx::query_scalar(
        "select count(*) from rooms
         where tenant_id = $1 and created_by = $2 and (kind = 'dm') = $3",
    )
    .bind(tenant.0)
    .bind(user.0)
    .bind(dms)
    .fetch_one(e)
    .await)?;
    Ok(to_u64(n))
}

/// Rooms (DMs: `dms`) of the tenant, however made, disabled ones included.
pub(crate) async fn count(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    dms: bool,
) -> Result<u64, sqlx::Error> {
    let n: i64 = on!(db, |e| sqlx::query_scalar(
        "select count(*) from rooms where tenant_id = $1 and (kind = 'dm') = $2"
    )
    .bind(tenant.0)
    .bind(dms)
    .fetch_one(e)
    .await)?;
    Ok(to_u64(n))
}

/// Adds the membership with `role` and drops any invitation; `true` when
/// the membership is new. The new member's read marker (and `joined_seq`,
/// from which mentions count) is the room's `last_seq`: what was said
/// before they joined is not unread for them.
pub(crate) async fn join(
    mut conn: Conn<'_>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
    role: Role,
) -> Result<bool, sqlx::Error> {
    let n = on_conn!(conn, |e| {
        sqlx::query(
        "insert into memberships (tenant_id, room_id, user_id, read_seq, joined_at, role, joined_seq)
         select tenant_id, id, $1, last_seq, $2, $3, last_seq from rooms where tenant_id = $4 and id = $5
         on conflict (room_id, user_id) do nothing",
    )
    .bind(user.0)
    .bind(now_ms())
    .bind(role.as_str())
    .bind(tenant.0)
    .bind(room.0)
    .execute(&mut *e)
    .await
    .map(|r| r.rows_affected())
    })?;
    // An invitation is used up by the join (`members` keeps the rest of
    // the invitation statements).
    on_conn!(conn, |e| sqlx::query(
        "delete from invitations where tenant_id = $1 and room_id = $2 and user_id = $3"
    )
    .bind(tenant.0)
    .bind(room.0)
    .bind(user.0)
    .execute(&mut *e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// A row that ties one user to one room.
#[derive(Debug, Clone, Copy)]
pub(super) enum Tie {
    /// `memberships`.
    Membership,
    /// `invitations`.
    Invitation,
    /// `bans`.
    Ban,
}

/// Deletes the user's `tie` to the room; `true` when there was one.
pub(super) async fn untie(
    db: impl Into<Ex<'_>>,
    tie: Tie,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
) -> Result<bool, sqlx::Error> {
    let sql = match tie {
        Tie::Membership => {
            "delete from memberships where tenant_id = $1 and room_id = $2 and user_id = $3"
        }
        Tie::Invitation => {
            "delete from invitations where tenant_id = $1 and room_id = $2 and user_id = $3"
        }
        Tie::Ban => "delete from bans where tenant_id = $1 and room_id = $2 and user_id = $3",
    };
    let n = on!(db, |e| sqlx::query(sql)
        .bind(tenant.0)
        .bind(room.0)
        .bind(user.0)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(n == 1)
}

/// Removes the membership; `true` when there was one.
pub(crate) async fn leave(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
) -> Result<bool, sqlx::Error> {
    untie(db, Tie::Membership, tenant, room, user).await
}

/// Moves the read marker forward (never back, never past the room's end).
pub(crate) async fn set_read(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
    seq: u64,
) -> Result<Option<u64>, sqlx::Error> {
    let db = db.into();
    // SQLite's two-argument max/min are PostgreSQL's greatest/least.
    let sql = db.pick(
        "update memberships set read_seq = max(read_seq, min($1, (select last_seq from rooms where id = $2)))
         where tenant_id = $3 and room_id = $2 and user_id = $4 returning read_seq",
        "update memberships set read_seq = greatest(read_seq, least($1, (select last_seq from rooms where id = $2)))
         where tenant_id = $3 and room_id = $2 and user_id = $4 returning read_seq",
    );
    let now: Option<i64> = on!(db, |e| sqlx::query_scalar(sql)
        .bind(i64::try_from(seq).unwrap_or(i64::MAX))
        .bind(room.0)
        .bind(tenant.0)
        .bind(user.0)
        .fetch_optional(e)
        .await)?;
    Ok(now.map(to_u64))
}

/// Builds the wire view of a room for a caller in `standing` with `counts`
/// (their unread and mention counts, [`super::mentions`]); `dm_title` is a
/// DM's `@`-list of the other members.
pub(crate) fn room_info(
    room: &Room,
    standing: &Standing,
    counts: Counts,
    dm_title: Option<String>,
) -> RoomInfo {
    let member = standing.role.is_some();
    RoomInfo {
        name: room.name.clone(),
        joined: member,
        last_seq: room.last_seq,
        read_seq: standing.read_seq.unwrap_or(0),
        unread: if member { counts.unread } else { 0 },
        mentions: if member { counts.mentions } else { 0 },
        id: Some(room.handle.clone()),
        kind: room.kind,
        title: Some(dm_title.unwrap_or_else(|| room.display_name().to_owned())),
        role: standing.role,
        invited: standing.invited && standing.role.is_none(),
        topic: (!room.topic.is_empty()).then(|| room.topic.clone()),
        archived: room.archived,
    }
}

/// The live rooms `user` is a member of.
pub(crate) async fn user_rooms(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    user: UserId,
) -> Result<Vec<(RoomId, String)>, sqlx::Error> {
    let rows: Vec<(i64, String)> = on!(db, |e| sqlx::query_as(
        "select r.id, r.name from memberships m join rooms r on r.id = m.room_id
         where m.tenant_id = $1 and m.user_id = $2 and r.tenant_id = $1 and not r.disabled",
    )
    .bind(tenant.0)
    .bind(user.0)
    .fetch_all(e)
    .await)?;
    Ok(rows.into_iter().map(|(id, name)| (RoomId(id), name)).collect())
}

/// Sets the topic.
pub(crate) async fn set_topic(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    topic: &str,
) -> Result<(), sqlx::Error> {
    on!(db, |e| sqlx::query("update rooms set topic = $1 where tenant_id = $2 and id = $3")
        .bind(topic)
        .bind(tenant.0)
        .bind(room.0)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Sets `archived`.
pub(crate) async fn set_archived(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    archived: bool,
) -> Result<(), sqlx::Error> {
    on!(db, |e| sqlx::query("update rooms set archived = $1 where tenant_id = $2 and id = $3")
        .bind(archived)
        .bind(tenant.0)
        .bind(room.0)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Gives a public or private room the name `name` and the kind `kind`
/// (a rename, or a change between public and private): a public room's
/// `name` column is its name, a private room's its handle with the name in
/// `title`. `Conflict` when a public room of that name exists.
pub(crate) async fn set_name_and_kind(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    name: &str,
    kind: RoomKind,
) -> Result<(), DbError> {
    let public = kind == RoomKind::Public;
    on!(db, |e| sqlx::query(
        "update rooms set kind = $1,
             name = case when $2 then $3 else handle end,
             title = case when $2 then null else $3 end
         where tenant_id = $4 and id = $5",
    )
    .bind(kind.as_str())
    .bind(public)
    .bind(name)
    .bind(tenant.0)
    .bind(room.0)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))
    .map_err(DbError::from_insert)?;
    Ok(())
}

/// What deleting a room left to clean up outside the database.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Deleted {
    /// Hashes of the stored files no other room offers any more (their rows
    /// are gone; their content is to be removed from disk).
    pub(crate) unreferenced: Vec<String>,
    /// Uploads to the room that were in progress (their rows are gone).
    pub(crate) uploads: Vec<String>,
}

/// Deletes a room with its messages, memberships, invitations, bans and
/// uploads, and the file rows no other room's messages offer.
pub(crate) async fn delete(
    mut conn: Conn<'_>,
    tenant: TenantId,
    room: RoomId,
) -> Result<Deleted, sqlx::Error> {
    let files: Vec<(i64, String)> = on_conn!(conn, |e| sqlx::query_as(
        "select f.id, f.hash from files f
         where f.tenant_id = $1
           and exists (select 1 from messages m where m.file_id = f.id and m.room_id = $2)
           and not exists (select 1 from messages m where m.file_id = f.id and m.room_id <> $2)",
    )
    .bind(tenant.0)
    .bind(room.0)
    .fetch_all(&mut *e)
    .await)?;
    let uploads: Vec<String> = on_conn!(conn, |e| sqlx::query_scalar(
        "select id from uploads where tenant_id = $1 and room_id = $2"
    )
    .bind(tenant.0)
    .bind(room.0)
    .fetch_all(&mut *e)
    .await)?;
    on_conn!(conn, |e| sqlx::query("delete from messages where tenant_id = $1 and room_id = $2")
        .bind(tenant.0)
        .bind(room.0)
        .execute(&mut *e)
        .await
        .map(|r| r.rows_affected()))?;
    for (id, _) in &files {
        on_conn!(conn, |e| sqlx::query("delete from files where tenant_id = $1 and id = $2")
            .bind(tenant.0)
            .bind(id)
            .execute(&mut *e)
            .await
            .map(|r| r.rows_affected()))?;
    }
    // Memberships, invitations, bans and uploads go with the room.
    on_conn!(conn, |e| sqlx::query("delete from rooms where tenant_id = $1 and id = $2")
        .bind(tenant.0)
        .bind(room.0)
        .execute(&mut *e)
        .await
        .map(|r| r.rows_affected()))?;
    Ok(Deleted { unreferenced: files.into_iter().map(|(_, h)| h).collect(), uploads })
}
