//! The re-check a node makes once its subscription is up (at start and
//! after every reconnection to NATS): what other nodes published while it
//! was away and the database cannot replay as messages — revoked sessions,
//! kicks, bans, joins, deleted rooms — is read from the database and
//! applied to this node's connections as it would have been live
//! (`hub/recheck.rs`).

use std::collections::HashSet;
use std::time::Duration;

use qchat_protocol::RemovedReason;

use crate::db::cluster::Removal;
use crate::db::{self, Db, RoomId};
use crate::hub::Hub;

/// Attempts while the database is unavailable, a second apart.
const ATTEMPTS: u32 = 60;

/// Re-checks every bound session and followed room against the database,
/// retried while the database is unavailable.
pub(super) async fn run(pool: &Db, hub: &Hub) {
    for attempt in 1..=ATTEMPTS {
        match once(pool, hub).await {
            Ok(()) => return,
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(cause = %e, "re-checking sessions and rooms; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => tracing::error!(cause = %e, "re-checking sessions and rooms given up"),
        }
    }
}

async fn once(pool: &Db, hub: &Hub) -> Result<(), sqlx::Error> {
    let (sessions, users) = hub.bound();
    let live = db::cluster::live_sessions(pool, &sessions).await?;
    let dead: Vec<Vec<u8>> = sessions.into_iter().filter(|h| !live.contains(h)).collect();
    if !dead.is_empty() {
        tracing::info!(count = dead.len(), "sessions ended while off the bus; closing them");
        hub.end_sessions(&dead);
    }
    let keys: Vec<_> = users.iter().map(|u| (u.tenant, u.user)).collect();
    let now = db::cluster::memberships(pool, &keys).await?;
    let none = HashSet::new();
    let mut out = Vec::new();
    for u in &users {
        let rooms = now.get(&(u.tenant, u.user)).unwrap_or(&none);
        // Joins first, with nothing awaited since the read: a leave made
        // here after the read is not undone.
        let added: Vec<RoomId> = rooms.difference(&u.rooms).copied().collect();
        if !added.is_empty() {
            hub.refollow(u.tenant, u.user, &[], &added);
        }
        out.extend(u.rooms.difference(rooms).map(|r| (u.tenant, u.user, *r)));
    }
    if !out.is_empty() {
        tracing::info!(count = out.len(), "memberships ended while off the bus; unsubscribing");
    }
    for (tenant, user, room) in out {
        let (why, label) = db::cluster::why_out(pool, room, user).await?;
        let reason = match why {
            Removal::Banned => RemovedReason::Banned,
            Removal::Gone => RemovedReason::Deleted,
            // A leave on another device looks the same; the room's
            // history says which it was.
            Removal::Out => RemovedReason::Kicked,
        };
        hub.refollow(tenant, user, &[(room, reason, label)], &[]);
    }
    Ok(())
}
