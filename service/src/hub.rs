//! Live state: which connection is subscribed to which room, who is online,
//! and fan-out. Frames are serialized once by the caller and shared (`Bytes`
//! clones are reference counts), so a message to a room of 1,000 costs one
//! JSON encoding.
//!
//! One std `Mutex` guards everything: every operation is a few hash-map
//! updates and non-blocking `try_send`s, never an `.await`.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use qchat_protocol::{Event, Presence, encode_json};

use tokio_util::sync::CancellationToken;

use crate::db::{RoomId, RoomLabel, TenantId, UserId};
use crate::outbound::Outbound;

/// Identifies one connection for the life of the process.
pub(crate) type ConnId = u64;

/// Rooms, subscribers and presence.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// Subscribers of each room.
    rooms: HashMap<RoomId, HashMap<ConnId, Outbound>>,
    /// Every logged-in connection.
    conns: HashMap<ConnId, Conn>,
    /// Logged-in connections of each user: online = non-empty.
    users: HashMap<(TenantId, UserId), HashSet<ConnId>>,
    /// The session (token hash) each logged-in connection uses, and what
    /// ends the connection when that session is revoked.
    sessions: HashMap<ConnId, (Vec<u8>, CancellationToken)>,
}

#[derive(Debug)]
struct Conn {
    tenant: TenantId,
    user: UserId,
    name: String,
    out: Outbound,
    rooms: HashSet<RoomId>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a logged-in connection subscribed to `rooms`. Tells the rooms
    /// when this is the user's first connection.
    pub(crate) fn attach(
        &self,
        conn: ConnId,
        tenant: TenantId,
        user: UserId,
        name: &str,
        out: Outbound,
        rooms: &[RoomId],
    ) {
        let mut st = self.lock();
        for room in rooms {
            st.rooms.entry(*room).or_default().insert(conn, out.clone());
        }
        st.conns.insert(
            conn,
            Conn {
                tenant,
                user,
                name: name.to_owned(),
                out,
                rooms: rooms.iter().copied().collect(),
            },
        );
        let conns = st.users.entry((tenant, user)).or_default();
        conns.insert(conn);
        if conns.len() == 1 {
            st.presence(
                tenant,
                user,
                Presence { user: name.to_owned(), online: true, reason: None },
            );
        }
    }

    /// Records which session `conn` is logged in with; [`Hub::revoke`]
    /// cancels `kick` when that session is revoked.
    pub(crate) fn bind_session(&self, conn: ConnId, token_hash: Vec<u8>, kick: CancellationToken) {
        self.lock().sessions.insert(conn, (token_hash, kick));
    }

    /// Ends every connection logged in with one of these sessions (their
    /// sessions tell the peer why and detach them).
    pub(crate) fn revoke(&self, token_hashes: &[Vec<u8>]) {
        let st = self.lock();
        for (hash, kick) in st.sessions.values() {
            if token_hashes.contains(hash) {
                kick.cancel();
            }
        }
    }

    /// Whether a connection is logged in with this session.
    pub(crate) fn session_connected(&self, token_hash: &[u8]) -> bool {
        self.lock().sessions.values().any(|(hash, _)| hash == token_hash)
    }

    /// Forgets a connection. Tells the rooms when it was the user's last one.
    pub(crate) fn detach(&self, conn: ConnId, reason: Option<String>) {
        let mut st = self.lock();
        st.sessions.remove(&conn);
        let Some(c) = st.conns.remove(&conn) else { return };
        for room in &c.rooms {
            if let Some(subs) = st.rooms.get_mut(room) {
                subs.remove(&conn);
                if subs.is_empty() {
                    st.rooms.remove(room);
                }
            }
        }
        let key = (c.tenant, c.user);
        let last = st.users.get_mut(&key).is_some_and(|set| {
            set.remove(&conn);
            set.is_empty()
        });
        if last {
            st.users.remove(&key);
            // Tell the rooms the user was in through this connection.
            st.presence_in(&c.rooms, None, Presence { user: c.name, online: false, reason });
        }
    }

    /// Subscribes every connection of `user` to `room`.
    pub(crate) fn subscribe_user(&self, tenant: TenantId, user: UserId, room: RoomId) {
        let mut st = self.lock();
        let conns: Vec<ConnId> =
            st.users.get(&(tenant, user)).into_iter().flatten().copied().collect();
        for id in conns {
            if let Some(c) = st.conns.get_mut(&id) {
                c.rooms.insert(room);
                let out = c.out.clone();
                st.rooms.entry(room).or_default().insert(id, out);
            }
        }
    }

    /// Unsubscribes every connection of `user` from `room`.
    pub(crate) fn unsubscribe_user(&self, tenant: TenantId, user: UserId, room: RoomId) {
        let mut st = self.lock();
        let conns: Vec<ConnId> =
            st.users.get(&(tenant, user)).into_iter().flatten().copied().collect();
        for id in conns {
            if let Some(c) = st.conns.get_mut(&id) {
                c.rooms.remove(&room);
            }
            if let Some(subs) = st.rooms.get_mut(&room) {
                subs.remove(&id);
            }
        }
        if st.rooms.get(&room).is_some_and(HashMap::is_empty) {
            st.rooms.remove(&room);
        }
    }

    /// Unsubscribes everyone from `room` (it was deleted).
    pub(crate) fn close_room(&self, room: RoomId) {
        let mut st = self.lock();
        let Some(subs) = st.rooms.remove(&room) else { return };
        for id in subs.keys() {
            if let Some(c) = st.conns.get_mut(id) {
                c.rooms.remove(&room);
            }
        }
    }

    /// Offers a pre-serialized event frame of `room` (called `label` on the
    /// wire) to every subscriber.
    pub(crate) fn publish(&self, room: RoomId, label: &RoomLabel, frame: &Bytes) {
        let st = self.lock();
        if let Some(subs) = st.rooms.get(&room) {
            for out in subs.values() {
                out.offer(frame.clone(), label);
            }
        }
    }

    /// Offers an event frame about room `label` to every connection of
    /// `user`, subscribed to the room or not (a `room` or `room.removed`
    /// event). A full queue marks the room lagged, as for a room's events.
    pub(crate) fn to_user(&self, tenant: TenantId, user: UserId, label: &RoomLabel, frame: &Bytes) {
        let st = self.lock();
        for id in st.users.get(&(tenant, user)).into_iter().flatten() {
            if let Some(c) = st.conns.get(id) {
                c.out.offer(frame.clone(), label);
            }
        }
    }

    /// Whether the user has a logged-in connection.
    pub(crate) fn is_online(&self, tenant: TenantId, user: UserId) -> bool {
        self.lock().users.contains_key(&(tenant, user))
    }
}

impl State {
    /// Presence of `user` to everyone sharing one of the user's subscribed rooms.
    fn presence(&self, tenant: TenantId, user: UserId, p: Presence) {
        let rooms: HashSet<RoomId> = self
            .users
            .get(&(tenant, user))
            .into_iter()
            .flatten()
            .filter_map(|id| self.conns.get(id))
            .flat_map(|c| c.rooms.iter().copied())
            .collect();
        let own: HashSet<ConnId> = self.users.get(&(tenant, user)).cloned().unwrap_or_default();
        self.presence_in(&rooms, Some(&own), p);
    }

    /// Sends `p` once to each subscriber of `rooms`, skipping `skip`.
    fn presence_in(&self, rooms: &HashSet<RoomId>, skip: Option<&HashSet<ConnId>>, p: Presence) {
        let frame = match encode_json(&Event::Presence(p)) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(cause = %e, "encoding presence event");
                return;
            }
        };
        let mut sent = HashSet::new();
        for room in rooms {
            for (id, out) in self.rooms.get(room).into_iter().flatten() {
                if skip.is_some_and(|s| s.contains(id)) || !sent.insert(*id) {
                    continue;
                }
                out.offer_any(frame.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::{self, Next};

    async fn next_json(rx: &mut outbound::OutboundRx) -> serde_json::Value {
        let mut frames = Vec::new();
        match rx.next(&mut frames).await {
            Some(Next::Frames) if frames.len() == 1 => {
                serde_json::from_slice(&frames[0][4..]).expect("json")
            }
            _ => panic!("expected one frame"),
        }
    }

    #[tokio::test]
    async fn presence_and_fanout_stay_in_their_rooms() {
        let hub = Hub::default();
        let (t1, t2) = (TenantId(1), TenantId(2));
        let (a_out, mut a_rx) = outbound::channel(16);
        let (b_out, mut b_rx) = outbound::channel(16);
        let (c_out, mut c_rx) = outbound::channel(16);
        hub.attach(1, t1, UserId(1), "ann", a_out, &[RoomId(10)]);
        hub.attach(3, t2, UserId(3), "cat", c_out, &[RoomId(20)]);
        hub.attach(2, t1, UserId(2), "bob", b_out, &[RoomId(10)]);
        let p = next_json(&mut a_rx).await;
        assert_eq!(p["ev"], "presence");
        assert_eq!(p["user"], "bob");
        assert_eq!(p["online"], true);

        let label = RoomLabel { name: "general".into(), id: "+0000000000000010".into() };
        hub.publish(RoomId(10), &label, &Bytes::from_static(b"\0\0\0\x02{}"));
        assert_eq!(next_json(&mut a_rx).await, serde_json::json!({}));
        assert_eq!(next_json(&mut b_rx).await, serde_json::json!({}));
        assert!(hub.is_online(t1, UserId(1)));
        assert!(!hub.is_online(t2, UserId(1)));

        hub.detach(2, Some("bye".into()));
        let p = next_json(&mut a_rx).await;
        assert_eq!(
            (p["user"].as_str(), p["online"].as_bool(), p["reason"].as_str()),
            (Some("bob"), Some(false), Some("bye"))
        );
        assert!(!hub.is_online(t1, UserId(2)));
        // The other tenant heard nothing.
        drop(hub);
        assert!(c_rx.next(&mut Vec::new()).await.is_none());
    }
}
