//! An upload's claim in the database, in a cluster: which node's stream is
//! receiving it (`db::claims`). A stream claims in memory first (one node's
//! streams settle among themselves there), then in the database; a holder
//! on another node is asked over the bus to stop (`Control::StopUpload`)
//! and let go, and one on a node that died loses its claim when the lease
//! runs out ([`LEASE`]; each node renews its leases every [`RENEW_EVERY`]).
//! `upload.begin` and `upload.status` wait the same way before they read
//! the bytes held, so the answer is final on every node.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::db::{self, Db, claims::Claimed};
use crate::hub::Hub;
use crate::hub::remote::NodeId;

use super::Transfers;

/// How long a claim outlives its node's last renewal: a killed node's
/// uploads resume elsewhere after at most this.
pub(crate) const LEASE: Duration = Duration::from_secs(6);
/// How often a node renews the leases of the uploads it receives.
const RENEW_EVERY: Duration = Duration::from_secs(2);
/// How often a waiting take-over looks at the claim again.
const POLL: Duration = Duration::from_millis(100);

/// This node's side of the claims in the database.
#[derive(Debug)]
pub(crate) struct ClusterClaims {
    node: NodeId,
    pool: Db,
    /// Carries the requests to stop to the other nodes.
    hub: Arc<Hub>,
}

/// The database's form of a node id.
fn as_db(node: NodeId) -> i64 {
    node as i64
}

fn lease_end() -> i64 {
    db::now_ms().saturating_add(LEASE.as_millis() as i64)
}

impl ClusterClaims {
    /// Claims of node `node` (the bus's id) on `pool`.
    pub(crate) fn new(node: NodeId, pool: Db, hub: Arc<Hub>) -> Self {
        Self { node, pool, hub }
    }

    /// Claims `upload` as this node's claim `claim`: asks a holder on
    /// another node to stop and waits, at most `wait`, for it to let go or
    /// its lease to end. `false` when that did not happen in time or the
    /// database failed.
    pub(super) async fn hold(&self, upload: &str, claim: i64, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        let mut asked = false;
        loop {
            let now = db::now_ms();
            match db::claims::claim(&self.pool, upload, as_db(self.node), claim, lease_end(), now)
                .await
            {
                // Gone: the stream finds no row and says so.
                Ok(Claimed::Yes | Claimed::Gone) => return true,
                Ok(Claimed::HeldBy(node)) => {
                    if node != 0 && !asked {
                        tracing::info!(upload, node = %format!("{node:016x}"), "asking another node to let an upload go");
                        self.hub.stop_upload(node as NodeId, upload);
                        asked = true;
                    }
                }
                Err(e) => {
                    tracing::error!(upload, cause = %e, "claiming an upload");
                    return false;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Waits, at most `wait`, until no other node holds `upload`, asking
    /// its holder to stop. `false` when one still does.
    pub(super) async fn wait_free(&self, upload: &str, wait: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + wait;
        let mut asked = false;
        loop {
            match db::claims::holder(&self.pool, upload, db::now_ms()).await {
                Ok(None) => return true,
                // This node's: the caller has taken it over here already
                // (its release may still be on its way).
                Ok(Some(node)) if node == as_db(self.node) => return true,
                Ok(Some(node)) => {
                    if !asked {
                        self.hub.stop_upload(node as NodeId, upload);
                        asked = true;
                    }
                }
                Err(e) => {
                    tracing::error!(upload, cause = %e, "looking for an upload's holder");
                    return false;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Lets go of claim `claim` in the background (from a `Drop`).
    pub(super) fn release_later(&self, upload: String, claim: i64) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let pool = self.pool.clone();
        rt.spawn(async move {
            if let Err(e) = db::claims::release(&pool, &upload, claim).await {
                // The lease ends it in a few seconds.
                tracing::warn!(upload, cause = %e, "releasing an upload's claim");
            }
        });
    }

    /// Lets go of this node's claim on `upload`, which none of its streams
    /// holds (another node asked it to stop).
    pub(super) async fn release_mine(&self, upload: &str) {
        if let Err(e) = db::claims::release_node(&self.pool, upload, as_db(self.node)).await {
            tracing::warn!(upload, cause = %e, "releasing an upload's claim");
        }
    }
}

/// Renews this node's leases every [`RENEW_EVERY`] until `cancel`.
pub(crate) async fn renew(transfers: Arc<Transfers>, cancel: CancellationToken) {
    let Some(cluster) = transfers.cluster.as_ref() else { return };
    let mut tick = tokio::time::interval(RENEW_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            _ = tick.tick() => {}
        }
        match db::claims::renew(&cluster.pool, as_db(cluster.node), lease_end()).await {
            Ok(n) => tracing::trace!(renewed = n, "upload leases"),
            Err(e) => tracing::warn!(cause = %e, "renewing upload leases"),
        }
    }
}
