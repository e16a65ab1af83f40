//! Claims of uploads in progress, in the database: which node's stream is
//! receiving an upload, with a lease that node renews while it holds it.
//! Every node of a cluster sees them, so a resume on one node stops a
//! stale stream on another, and a claim left by a node that died is taken
//! over once its lease has run out. A single node holds them too (its
//! streams also claim in memory, `transfer.rs`); nothing else reads them.

use super::{Db, Ex, on};

/// What [`claim`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Claimed {
    /// The upload is this claim's now.
    Yes,
    /// Another node holds it, its lease running.
    HeldBy(i64),
    /// There is no such upload (any more).
    Gone,
}

/// Claims `upload` for `node`'s claim `claim` until `until` (ms), unless
/// another node holds it with a lease running at `now`. A claim of the
/// same node is replaced: the node's own streams settle among themselves
/// in memory first.
///
/// # Errors
/// Database errors.
pub(crate) async fn claim(
    db: &Db,
    upload: &str,
    node: i64,
    claim: i64,
    until: i64,
    now: i64,
) -> Result<Claimed, sqlx::Error> {
    let n = on!(db, |e| sqlx::query(
        "update uploads set claim_node = $2, claim_id = $3, claim_until = $4
         where id = $1 and (claim_node is null or claim_node = $2 or claim_until < $5)"
    )
    .bind(upload)
    .bind(node)
    .bind(claim)
    .bind(until)
    .bind(now)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    if n == 1 {
        return Ok(Claimed::Yes);
    }
    let holder: Option<Option<i64>> =
        on!(db, |e| sqlx::query_scalar("select claim_node from uploads where id = $1")
            .bind(upload)
            .fetch_optional(e)
            .await)?;
    Ok(match holder {
        None => Claimed::Gone,
        Some(Some(node)) => Claimed::HeldBy(node),
        // Let go between the two statements: the caller tries again.
        Some(None) => Claimed::HeldBy(0),
    })
}

/// The node holding `upload` with a lease running at `now`, if any.
///
/// # Errors
/// Database errors.
pub(crate) async fn holder(
    db: impl Into<Ex<'_>>,
    upload: &str,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<Option<i64>> = on!(db, |e| sqlx::query_scalar(
        "select claim_node from uploads where id = $1 and claim_until >= $2"
    )
    .bind(upload)
    .bind(now)
    .fetch_optional(e)
    .await)?;
    Ok(row.flatten())
}

/// Lets go of claim `claim` of `upload` (nothing when another claim holds
/// it by now).
///
/// # Errors
/// Database errors.
pub(crate) async fn release(
    db: impl Into<Ex<'_>>,
    upload: &str,
    claim: i64,
) -> Result<(), sqlx::Error> {
    on!(db, |e| sqlx::query(
        "update uploads set claim_node = null, claim_id = null, claim_until = null
         where id = $1 and claim_id = $2"
    )
    .bind(upload)
    .bind(claim)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Lets go of whatever claim `node` has on `upload` (one no stream of the
/// node holds: asked to stop, the node found nothing to stop).
///
/// # Errors
/// Database errors.
pub(crate) async fn release_node(
    db: impl Into<Ex<'_>>,
    upload: &str,
    node: i64,
) -> Result<(), sqlx::Error> {
    on!(db, |e| sqlx::query(
        "update uploads set claim_node = null, claim_id = null, claim_until = null
         where id = $1 and claim_node = $2"
    )
    .bind(upload)
    .bind(node)
    .execute(e)
    .await
    .map(|r| r.rows_affected()))?;
    Ok(())
}

/// Moves every lease of `node`'s claims to `until`; returns how many.
///
/// # Errors
/// Database errors.
pub(crate) async fn renew(
    db: impl Into<Ex<'_>>,
    node: i64,
    until: i64,
) -> Result<u64, sqlx::Error> {
    on!(db, |e| sqlx::query("update uploads set claim_until = $2 where claim_node = $1")
        .bind(node)
        .bind(until)
        .execute(e)
        .await
        .map(|r| r.rows_affected()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{self, Content, NewUpload};

    #[tokio::test]
    async fn a_claim_holds_until_released_or_its_lease_ends() {
        for test_db in db::testing::each().await {
            let pool = &test_db.db;
            let t = db::tenants::create(pool, "acme", false).await.expect("tenant");
            let u = db::users::create(pool, t, "ann", "x").await.expect("user");
            let kind = qchat_protocol::RoomKind::Public;
            let r = db::rooms::create(pool, t, "files", kind, None).await.expect("room");
            let hash = "a".repeat(64);
            let row = NewUpload {
                id: "u1",
                tenant: t,
                user: u,
                room: r.id,
                name: "f",
                size: 10,
                content: Content::Hash(&hash),
            };
            db::files::create_upload(pool, &row).await.expect("upload");
            let (a, b) = (11, 22);
            assert_eq!(claim(pool, "u1", a, 1, 1000, 0).await.expect("claim"), Claimed::Yes);
            assert_eq!(holder(pool, "u1", 500).await.expect("holder"), Some(a));
            assert_eq!(claim(pool, "u1", b, 2, 2000, 500).await.expect("b"), Claimed::HeldBy(a));
            assert_eq!(renew(pool, a, 3000).await.expect("renew"), 1);
            assert_eq!(claim(pool, "u1", b, 2, 4000, 2500).await.expect("b"), Claimed::HeldBy(a));
            // The lease ends: b takes it over; a's late release does nothing.
            assert_eq!(claim(pool, "u1", b, 2, 5000, 3500).await.expect("b"), Claimed::Yes);
            release(pool, "u1", 1).await.expect("release");
            assert_eq!(holder(pool, "u1", 3500).await.expect("holder"), Some(b));
            release_node(pool, "u1", b).await.expect("release");
            assert_eq!(holder(pool, "u1", 3500).await.expect("holder"), None);
            assert_eq!(claim(pool, "nope", a, 3, 1000, 0).await.expect("gone"), Claimed::Gone);
        }
    }
}
