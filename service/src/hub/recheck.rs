//! What a node re-checks against the database when it (re)joins the bus:
//! the sessions its connections are bound to and the rooms they follow.
//!
//! Revocations, kicks, bans, joins and room deletions made on other nodes
//! reach this one as bus items, which NATS does not keep: those published
//! while this node was away from the bus (starting, or NATS down) are lost
//! to it. Messages are read back from the database by the gap backfill;
//! these are read back here instead. The bus calls [`Hub::bound`] once its
//! subscription is up, asks the database, and hands the differences to
//! [`Hub::end_sessions`] and [`Hub::refollow`]; what changes after the
//! subscription is up arrives live. Recent revocations are also kept for a
//! minute so that a connection binding a session just revoked (its log-in
//! read the session before the revocation committed) ends at once.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use qchat_protocol::{Event, RemovedReason, RoomRemoved, encode_json};

use super::{ConnId, Hub};
use crate::db::{RoomId, RoomLabel, TenantId, UserId};

/// How long a revoked session is remembered for connections still logging
/// in with it.
pub(super) const RECENT_REVOKED: Duration = Duration::from_secs(60);
/// At most this many recent revocations are remembered (the oldest go).
const RECENT_MAX: usize = 10_000;

/// Revocations seen lately, oldest first.
#[derive(Debug, Default)]
pub(super) struct Recent {
    order: std::collections::VecDeque<(Instant, Vec<u8>)>,
    set: HashSet<Vec<u8>>,
}

impl Recent {
    /// Remembers `hash` as revoked now.
    pub(super) fn insert(&mut self, hash: &[u8]) {
        let now = Instant::now();
        while let Some((at, old)) = self.order.front() {
            if now.duration_since(*at) < RECENT_REVOKED && self.order.len() < RECENT_MAX {
                break;
            }
            self.set.remove(old);
            self.order.pop_front();
        }
        if self.set.insert(hash.to_vec()) {
            self.order.push_back((now, hash.to_vec()));
        }
    }

    /// Whether `hash` was revoked within the last minute.
    pub(super) fn contains(&self, hash: &[u8]) -> bool {
        self.set.contains(hash)
    }
}

/// One local user's connections as [`Hub::bound`] reports them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LocalUser {
    /// The user's tenant.
    pub(crate) tenant: TenantId,
    /// The user.
    pub(crate) user: UserId,
    /// The rooms the user's connections here follow.
    pub(crate) rooms: HashSet<RoomId>,
}

impl Hub {
    /// The session of every logged-in connection here, and every local
    /// user with the rooms followed here.
    pub(crate) fn bound(&self) -> (Vec<Vec<u8>>, Vec<LocalUser>) {
        let st = self.lock();
        let sessions: HashSet<Vec<u8>> = st.sessions.values().map(|(h, _)| h.clone()).collect();
        let users = st
            .users
            .iter()
            .map(|((tenant, user), conns)| LocalUser {
                tenant: *tenant,
                user: *user,
                rooms: conns
                    .iter()
                    .filter_map(|id| st.conns.get(id))
                    .flat_map(|c| c.rooms.iter().copied())
                    .collect(),
            })
            .collect();
        (sessions.into_iter().collect(), users)
    }

    /// Ends the connections bound to these sessions (found revoked or
    /// expired in the database): as a revocation would.
    pub(crate) fn end_sessions(&self, token_hashes: &[Vec<u8>]) {
        self.remote_revoke(token_hashes);
    }

    /// Brings `user`'s connections here in line with the database: they
    /// stop following the `removed` rooms (with a `room.removed` event
    /// when the room's label is known, as a kick, ban or deletion on this
    /// node would send) and follow the `added` ones (joined elsewhere).
    pub(crate) fn refollow(
        &self,
        tenant: TenantId,
        user: UserId,
        removed: &[(RoomId, RemovedReason, Option<RoomLabel>)],
        added: &[RoomId],
    ) {
        for (room, reason, label) in removed {
            self.unsubscribe_here(tenant, user, *room);
            let st = self.lock();
            let label = label.clone().or_else(|| {
                st.order.known().into_iter().find(|(r, ..)| r == room).map(|(_, _, l, _)| l)
            });
            let Some(label) = label else { continue };
            let ev = Event::RoomRemoved(RoomRemoved {
                room: label.name.clone(),
                room_id: label.id.clone(),
                reason: *reason,
                by: None,
            });
            match encode_json(&ev) {
                Ok(frame) => {
                    let conns: Vec<ConnId> =
                        st.users.get(&(tenant, user)).into_iter().flatten().copied().collect();
                    for id in conns {
                        if let Some(c) = st.conns.get(&id) {
                            c.out.offer(frame.clone(), &label);
                        }
                    }
                }
                Err(e) => tracing::error!(cause = %e, "encoding room.removed"),
            }
        }
        for room in added {
            self.subscribe_here(tenant, user, *room);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::{self, Next};
    use tokio_util::sync::CancellationToken;

    #[tokio::test]
    async fn a_session_revoked_before_it_binds_ends_at_once() {
        let hub = Hub::default();
        let (out, _rx) = outbound::channel(4);
        hub.attach(1, TenantId(1), UserId(1), "ann", out, &[]);
        hub.remote_revoke(&[b"old".to_vec()]);
        let kick = CancellationToken::new();
        hub.bind_session(1, b"old".to_vec(), kick.clone());
        assert!(kick.is_cancelled(), "bound after its revocation: ended");
        let other = CancellationToken::new();
        hub.bind_session(1, b"new".to_vec(), other.clone());
        assert!(!other.is_cancelled());
    }

    #[tokio::test]
    async fn refollow_removes_and_adds_rooms() {
        let hub = Hub::default();
        let (t, u) = (TenantId(1), UserId(1));
        let (out, mut rx) = outbound::channel(16);
        hub.attach(1, t, u, "ann", out, &[RoomId(10), RoomId(11)]);
        let kick = CancellationToken::new();
        hub.bind_session(1, b"s".to_vec(), kick.clone());
        let (sessions, users) = hub.bound();
        assert_eq!(sessions, [b"s".to_vec()]);
        assert_eq!(users[0].rooms, HashSet::from([RoomId(10), RoomId(11)]));

        let label = RoomLabel { name: "plans".into(), id: "+0000000000000011".into() };
        hub.refollow(t, u, &[(RoomId(11), RemovedReason::Kicked, Some(label))], &[RoomId(12)]);
        let (_, users) = hub.bound();
        assert_eq!(users[0].rooms, HashSet::from([RoomId(10), RoomId(12)]));
        let mut frames = Vec::new();
        assert_eq!(rx.next(&mut frames).await, Some(Next::Frames));
        let ev: serde_json::Value = serde_json::from_slice(&frames[0][4..]).expect("json");
        assert_eq!(
            (ev["ev"].as_str(), ev["reason"].as_str()),
            (Some("room.removed"), Some("kicked"))
        );

        hub.end_sessions(&[b"s".to_vec()]);
        assert!(kick.is_cancelled());
    }
}
