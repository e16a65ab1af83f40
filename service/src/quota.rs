//! Quotas on what users create, per user and per tenant, so that one
//! member cannot make a tenant unusable for the others by creating without
//! end (issue 22: 9,000 rooms from one user broke every member's `rooms`).
//!
//! Each kind of created thing is a [`Created`] variant with two counts in
//! `db/` (the user's, the tenant's) and two keys in `[quotas]`. The handler
//! that creates one does so in a write transaction (SQLite's `BEGIN
//! IMMEDIATE`; on PostgreSQL with the tenant's row locked,
//! `db::tenants::lock`; the writer's own transaction, for invitations),
//! inserts, then calls [`check`] before committing: writers are serialized
//! there, so the counts include every concurrent creation and a quota is
//! never passed, and a refusal rolls the insert back. Rooms, direct
//! messages and invitations; reactions (issue 18) are to be added the same
//! way.

pub(crate) mod kind;

use crate::config::Quotas;
use crate::db::{self, Conn, TenantId, UserId};
use crate::error::{Result, refuse};
use crate::metrics::Metrics;
use kind::{Created, Scope};

/// Checks, in the write transaction that has just created one `kind` for
/// `user`, that neither the user's count nor the tenant's passed its quota.
///
/// # Errors
/// `quota_exceeded` naming the quota (roll the transaction back); database
/// faults.
pub(crate) async fn check(
    conn: &mut Conn<'_>,
    quotas: &Quotas,
    metrics: &Metrics,
    kind: Created,
    tenant: TenantId,
    user: UserId,
) -> Result<()> {
    let (per_user, per_tenant) = limits(kind, quotas);
    let (mine, all) = counts(kind, conn, tenant, user).await?;
    let name = kind.name();
    let (scope, message) = if mine > per_user {
        (Scope::User, format!("you have created the most {name}s one user may ({per_user})"))
    } else if all > per_tenant {
        (Scope::Tenant, format!("this tenant holds the most {name}s it may ({per_tenant})"))
    } else {
        return Ok(());
    };
    metrics.quota_refused(kind, scope);
    Err(refuse(qchat_protocol::ErrorCode::QuotaExceeded, message))
}

/// (per user, per tenant) limits of `kind` from the configuration.
fn limits(kind: Created, q: &Quotas) -> (u64, u64) {
    match kind {
        Created::Room => (q.rooms_per_user, q.rooms_per_tenant),
        Created::Dm => (q.dms_per_user, q.dms_per_tenant),
        Created::Invitation => (q.invitations_per_user, q.invitations_per_tenant),
    }
}

/// (the user's, the tenant's) count of `kind`, read inside the transaction.
async fn counts(
    kind: Created,
    conn: &mut Conn<'_>,
    tenant: TenantId,
    user: UserId,
) -> Result<(u64, u64)> {
    Ok(match kind {
        Created::Room | Created::Dm => {
            let dms = kind == Created::Dm;
            (
                db::rooms::count_created_by(conn.re(), tenant, user, dms).await?,
                db::rooms::count(conn.re(), tenant, dms).await?,
            )
        }
        Created::Invitation => (
            db::members::count_invitations_by(conn.re(), tenant, user).await?,
            db::members::count_invitations(conn.re(), tenant).await?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The counts include what the transaction itself created, the user's
    /// quota is checked before the tenant's, and other tenants' rooms do
    /// not count.
    #[tokio::test]
    async fn room_quotas_count_the_user_and_the_tenant() {
        for test_db in db::testing::each().await {
            room_quotas_count_on(&test_db).await;
        }
    }

    async fn room_quotas_count_on(pool: &db::Db) {
        let t = db::tenants::create(pool, "acme", false).await.expect("tenant");
        let other = db::tenants::create(pool, "other", false).await.expect("tenant");
        let ann = db::users::create(pool, t, "ann", "x").await.expect("user");
        let bob = db::users::create(pool, t, "bob", "x").await.expect("user");
        let zed = db::users::create(pool, other, "zed", "x").await.expect("user");
        let quotas = Quotas { rooms_per_user: 2, rooms_per_tenant: 3, ..Quotas::default() };
        let metrics = Metrics::default();
        let mut pooled = pool.acquire().await.expect("conn");
        let mut conn = pooled.conn();
        let mut create = async |tenant, user, name: &str| {
            let public = qchat_protocol::RoomKind::Public;
            db::rooms::create(&mut conn, tenant, name, public, Some(user)).await.expect("insert");
            check(&mut conn, &quotas, &metrics, Created::Room, tenant, user).await
        };
        // Another tenant, filled up first: its rooms never count here.
        assert!(create(other, zed, "z0").await.is_ok());
        assert!(create(other, zed, "z1").await.is_ok());
        assert!(create(other, zed, "z2").await.is_err(), "zed's third");
        assert!(create(t, ann, "a1").await.is_ok());
        assert!(create(t, ann, "a2").await.is_ok());
        let e = create(t, ann, "a3").await.expect_err("third of ann's");
        assert_eq!(e.to_body().code, qchat_protocol::ErrorCode::QuotaExceeded);
        assert!(e.to_body().message.contains("one user"), "{}", e.to_body().message);
        // a3 is stored here (no transaction to roll back): the tenant holds 3.
        let e = create(t, bob, "b1").await.expect_err("the tenant's fourth");
        assert!(e.to_body().message.contains("tenant"), "{}", e.to_body().message);
        let text = metrics.render();
        assert!(
            text.contains(r#"qchat_quota_refusals_total{what="room",scope="user"} 2"#),
            "{text}"
        );
        assert!(text.contains(r#"qchat_quota_refusals_total{what="room",scope="tenant"} 1"#));
    }
}
