//! What cluster mode reads besides the tables' own modules: where every
//! room's seq stands, the baseline a node's delivery order starts from, and
//! what a node re-checks after it (re)joins the bus: which of its bound
//! sessions are still valid and which rooms its users are still in.

use std::collections::{HashMap, HashSet};

use sqlx::AssertSqlSafe;

use super::sql::{numbered, to_u64};
use super::{Db, Ex, RoomId, RoomLabel, TenantId, UserId, now_ms, on};

/// Values asked per statement by the set queries below (one placeholder
/// each: well under both engines' limits).
const CHUNK: usize = 500;

/// Every live room as `(room, tenant, label, last_seq)`.
///
/// # Errors
/// Database errors.
pub(crate) async fn room_positions(
    db: impl Into<Ex<'_>>,
) -> Result<Vec<(RoomId, TenantId, RoomLabel, u64)>, sqlx::Error> {
    let rows: Vec<(i64, i64, String, Option<String>, i64)> = on!(db, |e| sqlx::query_as(
        "select id, tenant_id, name, handle, last_seq from rooms where not disabled"
    )
    .fetch_all(e)
    .await)?;
    Ok(rows
        .into_iter()
        .map(|(id, tenant, name, handle, last)| {
            // A row without a handle is called by its name (as `Room`s are).
            let id_text = handle.unwrap_or_else(|| name.clone());
            (RoomId(id), TenantId(tenant), RoomLabel { name, id: id_text }, to_u64(last))
        })
        .collect())
}

/// Of these sessions (token hashes), the ones still valid: unexpired, of
/// an enabled user of an enabled tenant.
///
/// # Errors
/// Database errors.
pub(crate) async fn live_sessions(
    db: &Db,
    hashes: &[Vec<u8>],
) -> Result<HashSet<Vec<u8>>, sqlx::Error> {
    let mut live = HashSet::new();
    for chunk in hashes.chunks(CHUNK) {
        let sql = format!(
            "select s.token_hash from sessions s
             join users u on u.id = s.user_id and u.tenant_id = s.tenant_id
             join tenants t on t.id = s.tenant_id
             where s.expires_at > $1 and not u.disabled and not t.disabled
               and s.token_hash in ({})",
            numbered(2, chunk.len())
        );
        let rows: Vec<(Vec<u8>,)> = on!(db, |e| {
            let mut q = sqlx::query_as(AssertSqlSafe(sql.clone())).bind(now_ms());
            for h in chunk {
                q = q.bind(h.as_slice());
            }
            q.fetch_all(e).await
        })?;
        live.extend(rows.into_iter().map(|(h,)| h));
    }
    Ok(live)
}

/// The live rooms each of these users is a member of (as
/// [`super::rooms::user_rooms`], for many users at once). A user in no
/// room is absent.
///
/// # Errors
/// Database errors.
pub(crate) async fn memberships(
    db: &Db,
    users: &[(TenantId, UserId)],
) -> Result<HashMap<(TenantId, UserId), HashSet<RoomId>>, sqlx::Error> {
    let mut rooms: HashMap<(TenantId, UserId), HashSet<RoomId>> = HashMap::new();
    for chunk in users.chunks(CHUNK) {
        let sql = format!(
            "select m.tenant_id, m.user_id, m.room_id from memberships m
             join rooms r on r.id = m.room_id and r.tenant_id = m.tenant_id
             where not r.disabled and m.user_id in ({})",
            numbered(1, chunk.len())
        );
        let rows: Vec<(i64, i64, i64)> = on!(db, |e| {
            let mut q = sqlx::query_as(AssertSqlSafe(sql.clone()));
            for (_, u) in chunk {
                q = q.bind(u.0);
            }
            q.fetch_all(e).await
        })?;
        for (t, u, r) in rows {
            rooms.entry((TenantId(t), UserId(u))).or_default().insert(RoomId(r));
        }
    }
    Ok(rooms)
}

/// Why `user` is no longer in `room`, as far as the database tells:
/// banned, the room gone (deleted or disabled), or neither (kicked or
/// left). With the room's label when the room still exists.
///
/// # Errors
/// Database errors.
pub(crate) async fn why_out(
    db: &Db,
    room: RoomId,
    user: UserId,
) -> Result<(Removal, Option<RoomLabel>), sqlx::Error> {
    let row: Option<(String, Option<String>, bool, i64)> = on!(db, |e| sqlx::query_as(
        "select r.name, r.handle, r.disabled,
                (select count(*) from bans b where b.room_id = r.id and b.user_id = $2)
         from rooms r where r.id = $1"
    )
    .bind(room.0)
    .bind(user.0)
    .fetch_optional(e)
    .await)?;
    Ok(match row {
        None => (Removal::Gone, None),
        Some((name, handle, disabled, banned)) => {
            let id = handle.unwrap_or_else(|| name.clone());
            let why = if disabled {
                Removal::Gone
            } else if banned > 0 {
                Removal::Banned
            } else {
                Removal::Out
            };
            (why, Some(RoomLabel { name, id }))
        }
    })
}

/// What [`why_out`] finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Removal {
    /// A ban stands.
    Banned,
    /// The room was deleted or disabled.
    Gone,
    /// The membership ended otherwise (a kick or a leave).
    Out,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db;

    #[tokio::test]
    async fn positions_follow_the_rooms() {
        for test_db in db::testing::each().await {
            let pool = &test_db.db;
            let t = db::tenants::create(pool, "acme", false).await.expect("tenant");
            let kind = qchat_protocol::RoomKind::Public;
            let r = db::rooms::create(pool, t, "general", kind, None).await.expect("room");
            let got = room_positions(pool).await.expect("positions");
            assert_eq!(got, [(r.id, t, r.label(), 0)]);
        }
    }

    #[tokio::test]
    async fn the_recheck_reads_sessions_and_memberships() {
        for test_db in db::testing::each().await {
            let pool = &test_db.db;
            let t = db::tenants::create(pool, "acme", false).await.expect("tenant");
            let ann = db::users::create(pool, t, "ann", "x").await.expect("ann");
            let bob = db::users::create(pool, t, "bob", "x").await.expect("bob");
            let kind = qchat_protocol::RoomKind::Public;
            let r = db::rooms::create(pool, t, "general", kind, None).await.expect("room");
            let mut pooled = pool.acquire().await.expect("conn");
            let owner = qchat_protocol::Role::Owner;
            db::rooms::join(pooled.conn(), t, r.id, ann, owner).await.expect("join");
            drop(pooled);
            let origin = db::sessions::Origin { client: "", address: "" };
            let later = now_ms() + 60_000;
            db::sessions::create(pool, t, ann, b"live", later, origin).await.expect("s");
            db::sessions::create(pool, t, ann, b"old", 1, origin).await.expect("s");
            let asked = [b"live".to_vec(), b"old".to_vec(), b"gone".to_vec()];
            let live = live_sessions(pool, &asked).await.expect("live");
            assert_eq!(live, HashSet::from([b"live".to_vec()]));

            let m = memberships(pool, &[(t, ann), (t, bob)]).await.expect("memberships");
            assert_eq!(m.len(), 1);
            assert_eq!(m[&(t, ann)], HashSet::from([r.id]));
            assert_eq!(
                why_out(pool, r.id, bob).await.expect("why"),
                (Removal::Out, Some(r.label()))
            );
            db::members::ban(pool, t, r.id, bob, ann, "").await.expect("ban");
            assert_eq!(why_out(pool, r.id, bob).await.expect("why").0, Removal::Banned);
            assert_eq!(why_out(pool, RoomId(999), bob).await.expect("why"), (Removal::Gone, None));
        }
    }
}
