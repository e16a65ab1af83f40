//! `mentions` (and `messages.mentions_room`): whom a message mentions; and
//! the per-user `unread` and `mentions` counts of a room, each one range of
//! an index after the member's read marker, stopped at
//! [`MAX_UNREAD_COUNT`] (never a scan of the room's history).

use qchat_protocol::MAX_UNREAD_COUNT;
// AssertSqlSafe: the dynamic statements below are built from constants and
// `$N` placeholders only; every value is bound.
use sqlx::AssertSqlSafe;

use super::sql::{placeholders, to_u64};
use super::{Backend, Conn, Ex, RoomId, TenantId, UserId, on, on_conn};

/// A member's counts in one room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Text and file messages of others after the read marker, not deleted.
    pub(crate) unread: u64,
    /// Those of them that mention the member, by name or `@room`.
    pub(crate) mentions: u64,
}

impl Counts {
    fn from_row(unread: i64, mentions: i64) -> Self {
        Self {
            unread: to_u64(unread).min(MAX_UNREAD_COUNT),
            mentions: to_u64(mentions).min(MAX_UNREAD_COUNT),
        }
    }
}

/// The `unread` and `mentions` columns for the room `r` and the membership
/// `m` (null when the user is not a member: then both are 0). Each count is
/// one range of a covering index, stopped at [`MAX_UNREAD_COUNT`] rows:
/// `messages_unread` (text and file messages not deleted, with their
/// sender), `mentions_user`, `messages_mentions_room`. Mentions count from
/// the later of the read marker and the membership's start (`joined_seq`).
/// SQLite is told the partial indexes (`indexed by`): without statistics it
/// would walk the room's rows after the marker instead.
pub(super) fn count_columns(backend: Backend) -> String {
    let cap = MAX_UNREAD_COUNT;
    let (unread, room_wide) = match backend {
        Backend::Sqlite => ("indexed by messages_unread", "indexed by messages_mentions_room"),
        Backend::Postgres => ("", ""),
    };
    format!(
        "(select count(*) from (select 1 from messages c {unread}
            where c.room_id = r.id and c.seq > m.read_seq
              and c.kind <> 'system' and c.deleted_at is null
              and (c.sender_id is null or c.sender_id <> m.user_id)
            limit {cap}) cu) as unread,
         (select count(*) from (select 1 from mentions x
            where x.room_id = r.id and x.user_id = m.user_id
              and x.seq > m.read_seq and x.seq > m.joined_seq
            limit {cap}) cx)
         + (select count(*) from (select 1 from messages c {room_wide}
            where c.room_id = r.id and c.mentions_room
              and c.seq > m.read_seq and c.seq > m.joined_seq
              and (c.sender_id is null or c.sender_id <> m.user_id)
            limit {cap}) cr) as mentions"
    )
}

/// A member's counts with the read marker and the room's `last_seq` they
/// were taken at: one statement, so one snapshot (a room's `last_seq` and
/// its messages up to it are committed together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// The counts.
    pub(crate) counts: Counts,
    /// The member's read marker.
    pub(crate) read_seq: u64,
    /// The room's highest seq: the counts are of the messages up to it.
    pub(crate) last_seq: u64,
}

/// `user`'s counts in the room with the marker and `last_seq` they were
/// taken at; `None` when not a member.
pub(crate) async fn tally(
    db: impl Into<Ex<'_>>,
    tenant: TenantId,
    room: RoomId,
    user: UserId,
) -> Result<Option<Tally>, sqlx::Error> {
    let db = db.into();
    let sql = format!(
        "select {}, m.read_seq, r.last_seq
         from memberships m join rooms r on r.id = m.room_id and r.tenant_id = m.tenant_id
         where m.tenant_id = $1 and m.room_id = $2 and m.user_id = $3",
        count_columns(db.backend())
    );
    let row: Option<(i64, i64, i64, i64)> = on!(db, |e| sqlx::query_as(AssertSqlSafe(sql))
        .bind(tenant.0)
        .bind(room.0)
        .bind(user.0)
        .fetch_optional(e)
        .await)?;
    Ok(row.map(|(u, m, read_seq, last_seq)| Tally {
        counts: Counts::from_row(u, m),
        read_seq: to_u64(read_seq),
        last_seq: to_u64(last_seq),
    }))
}

/// Reads the counts columns of a row ([`count_columns`]).
pub(super) fn counts_of(unread: i64, mentions: i64) -> Counts {
    Counts::from_row(unread, mentions)
}

/// One stored mention: message `seq` of the room mentions `user` by name.
pub(crate) type Mention = (TenantId, RoomId, u64, UserId);

/// Stores mentions by name (members only: the writer decided) and the
/// `@room` flag of the messages in `room_wide`, inside the writer's
/// transaction.
pub(crate) async fn record(
    conn: &mut Conn<'_>,
    named: &[Mention],
    room_wide: &[(TenantId, RoomId, u64)],
) -> Result<(), sqlx::Error> {
    let clamp = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    // Four parameters a row: far below either engine's limit.
    for chunk in named.chunks(500) {
        let sql = format!(
            "insert into mentions (tenant_id, room_id, seq, user_id) values {}
             on conflict do nothing",
            placeholders(chunk.len(), 4)
        );
        on_conn!(conn, |e| {
            let mut q = sqlx::query(AssertSqlSafe(sql)).persistent(false);
            for (tenant, room, seq, user) in chunk {
                q = q.bind(tenant.0).bind(room.0).bind(clamp(*seq)).bind(user.0);
            }
            q.execute(&mut *e).await?;
        });
    }
    for (tenant, room, seq) in room_wide {
        on!(conn.re(), |e| sqlx::query(
            "update messages set mentions_room = true
             where tenant_id = $1 and room_id = $2 and seq = $3"
        )
        .bind(tenant.0)
        .bind(room.0)
        .bind(clamp(*seq))
        .execute(e)
        .await
        .map(|r| r.rows_affected()))?;
    }
    Ok(())
}
