//! Live state: which connection is subscribed to which room, who is online,
//! and fan-out. Frames are serialized once by the caller and shared (`Bytes`
//! clones are reference counts), so a message to a room of 1,000 costs one
//! JSON encoding.
//!
//! One std `Mutex` guards everything: every operation is a few hash-map
//! updates and non-blocking `try_send`s, never an `.await`.
//!
//! Messages go through [`order`]: each room's reach this node's
//! subscribers in seq order and once. In a cluster the hub also tells the
//! other nodes what happened here ([`remote::Outgoing`], through a channel
//! the bus drains) and takes what they report (the `remote_*` methods):
//! their messages and room events, joins and leaves that subscribe
//! connections here, and who is online there ([`remote::Remote`]), so that
//! presence and `members` count every node.

pub(crate) mod order;
pub(crate) mod recheck;
pub(crate) mod remote;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;
use qchat_protocol::{Event, Presence, encode_json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::db::{RoomId, RoomLabel, TenantId, UserId};
use crate::metrics::Metrics;
use crate::outbound::Outbound;
use order::{Frame, Order};
use remote::{Control, Item, NodeId, OnlineUser, Outgoing, Remote};

/// Identifies one connection for the life of the process.
pub(crate) type ConnId = u64;

/// Items the hub may have queued for the bus. The bus drains the queue at
/// once unless NATS is slow to take what it publishes; past this the hub
/// drops what it would queue (see [`Hub::take_overflow`]).
pub(crate) const BUS_QUEUE: usize = 8192;

/// Rooms, subscribers and presence.
#[derive(Debug, Default)]
pub(crate) struct Hub {
    state: Mutex<State>,
    /// To the bus, in a cluster; `None` on a single node.
    cluster: Option<BusQueue>,
}

/// The hub's end of its queue to the bus.
#[derive(Debug)]
struct BusQueue {
    tx: mpsc::Sender<Outgoing>,
    /// Counts the items dropped on a full queue.
    metrics: Arc<Metrics>,
    /// Set when an item was dropped; the bus takes it.
    overflowed: AtomicBool,
    /// Whether the bus has been subscribed once (see [`Hub::bus_up`]).
    up: tokio::sync::watch::Sender<bool>,
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
    /// Each room's delivery order.
    order: Order,
    /// Who is online on the other nodes.
    remote: Remote,
    /// When each user's last `typing` event in each room was relayed.
    typing: HashMap<(RoomId, UserId), std::time::Instant>,
    /// The size of `typing` that makes the next relay forget stale entries
    /// (0: [`TYPING_CLEAN_FROM`]); doubled when a cleaning kept most of
    /// them, so a busy map is not walked on every relay.
    typing_clean_at: usize,
    /// Sessions revoked in the last minute, for connections binding one.
    recent_revoked: recheck::Recent,
}

/// Entries in the typing map below which it is never cleaned.
const TYPING_CLEAN_FROM: usize = 4096;

#[derive(Debug)]
struct Conn {
    tenant: TenantId,
    user: UserId,
    name: String,
    out: Outbound,
    rooms: HashSet<RoomId>,
}

impl Hub {
    /// A hub that reports to the other nodes of a cluster through `bus`
    /// (a queue of [`BUS_QUEUE`] items), counting what it drops in
    /// `metrics`.
    pub(crate) fn clustered(bus: mpsc::Sender<Outgoing>, metrics: Arc<Metrics>) -> Self {
        let queue = BusQueue {
            tx: bus,
            metrics,
            overflowed: AtomicBool::new(false),
            up: tokio::sync::watch::Sender::new(false),
        };
        Self { state: Mutex::default(), cluster: Some(queue) }
    }

    /// The bus's subscription is up (for the first time, or again).
    pub(crate) fn bus_up(&self) {
        if let Some(q) = &self.cluster {
            q.up.send_replace(true);
        }
    }

    /// Waits, at most `limit`, until the bus has been subscribed once
    /// since start (at once on a single node). A log-in waits so that what
    /// other nodes publish about the new connection's user (an invitation,
    /// a kick) reaches it; after `limit` (NATS down at start) it goes on
    /// and the node serves without the others until NATS is back.
    pub(crate) async fn wait_bus(&self, limit: std::time::Duration) {
        if let Some(q) = &self.cluster {
            let mut rx = q.up.subscribe();
            let _ = tokio::time::timeout(limit, rx.wait_for(|up| *up)).await;
        }
    }

    /// Whether an item for the bus was dropped since the last call. The
    /// bus then makes every node (itself included) read what it may have
    /// missed from the database, as after a reconnection: messages through
    /// the gap fills, revocations and memberships through the re-check.
    pub(crate) fn take_overflow(&self) -> bool {
        self.cluster.as_ref().is_some_and(|q| q.overflowed.swap(false, Ordering::AcqRel))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Hands `item` to the bus (nothing on a single node) without
    /// waiting: never under the hub's lock, never holding up a commit. On
    /// a full queue the item is dropped and counted, and the receivers
    /// read what they missed from the database ([`Hub::take_overflow`]).
    fn tell(&self, item: impl Into<Outgoing>) {
        if let Some(q) = &self.cluster {
            match q.tx.try_send(item.into()) {
                // Closed only while shutting down.
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    q.metrics.bus_dropped();
                    if !q.overflowed.swap(true, Ordering::AcqRel) {
                        tracing::warn!(
                            "bus queue full: dropping; the nodes will read from the database"
                        );
                    }
                }
            }
        }
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
            if !st.remote.is_online((tenant, user)) {
                st.presence(
                    tenant,
                    user,
                    Presence { user: name.to_owned(), online: true, reason: None },
                );
            }
            let user = st.online_user(tenant, user, name);
            self.tell(Item::Control(Control::Presence { user, online: true, reason: None }));
        }
    }

    /// Records which session `conn` is logged in with; [`Hub::revoke`]
    /// cancels `kick` when that session is revoked. A session revoked in
    /// the last minute (the log-in read it just before the revocation
    /// committed) cancels `kick` at once.
    pub(crate) fn bind_session(&self, conn: ConnId, token_hash: Vec<u8>, kick: CancellationToken) {
        let mut st = self.lock();
        if st.recent_revoked.contains(&token_hash) {
            kick.cancel();
        }
        st.sessions.insert(conn, (token_hash, kick));
    }

    /// Ends every connection logged in with one of these sessions (their
    /// sessions tell the peer why and detach them), on every node.
    pub(crate) fn revoke(&self, token_hashes: &[Vec<u8>]) {
        self.remote_revoke(token_hashes);
        let sessions = token_hashes.iter().map(hex::encode).collect();
        self.tell(Item::Control(Control::Revoke { sessions }));
    }

    /// [`Hub::revoke`] for this node's connections, as another node asks.
    pub(crate) fn remote_revoke(&self, token_hashes: &[Vec<u8>]) {
        let mut st = self.lock();
        for hash in token_hashes {
            st.recent_revoked.insert(hash);
        }
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
            let user = OnlineUser {
                tenant: c.tenant.0,
                user: c.user.0,
                name: c.name.clone(),
                rooms: c.rooms.iter().map(|r| r.0).collect(),
            };
            if !st.remote.is_online(key) {
                // Tell the rooms the user was in through this connection.
                let p = Presence { user: c.name, online: false, reason: reason.clone() };
                st.presence_in(&c.rooms, None, p);
            }
            self.tell(Item::Control(Control::Presence { user, online: false, reason }));
        }
    }

    /// Subscribes every connection of `user` to `room`, on every node.
    pub(crate) fn subscribe_user(&self, tenant: TenantId, user: UserId, room: RoomId) {
        self.remote_subscribe(tenant, user, room, true);
        self.tell(Item::Control(Control::Subscribe {
            tenant: tenant.0,
            user: user.0,
            room: room.0,
            on: true,
        }));
    }

    /// Unsubscribes every connection of `user` from `room`, on every node.
    pub(crate) fn unsubscribe_user(&self, tenant: TenantId, user: UserId, room: RoomId) {
        self.remote_subscribe(tenant, user, room, false);
        self.tell(Item::Control(Control::Subscribe {
            tenant: tenant.0,
            user: user.0,
            room: room.0,
            on: false,
        }));
    }

    /// Subscribes (`on`) or unsubscribes this node's connections of `user`
    /// to `room`, as a join or leave on another node asks.
    pub(crate) fn remote_subscribe(&self, tenant: TenantId, user: UserId, room: RoomId, on: bool) {
        self.lock().remote.follow((tenant, user), room, on);
        if on {
            self.subscribe_here(tenant, user, room);
        } else {
            self.unsubscribe_here(tenant, user, room);
        }
    }

    fn subscribe_here(&self, tenant: TenantId, user: UserId, room: RoomId) {
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

    fn unsubscribe_here(&self, tenant: TenantId, user: UserId, room: RoomId) {
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

    /// Asks `node` to stop its stream of `upload` (it resumes here).
    pub(crate) fn stop_upload(&self, node: NodeId, upload: &str) {
        self.tell(Item::Control(Control::StopUpload { node, upload: upload.to_owned() }));
    }

    /// Unsubscribes everyone from `room` (it was deleted), on every node.
    pub(crate) fn close_room(&self, room: RoomId) {
        self.remote_close_room(room);
        self.tell(Item::Control(Control::CloseRoom { room: room.0 }));
    }

    /// Unsubscribes this node's connections from `room`, as another node
    /// that deleted it asks.
    pub(crate) fn remote_close_room(&self, room: RoomId) {
        let mut st = self.lock();
        let Some(subs) = st.rooms.remove(&room) else { return };
        for id in subs.keys() {
            if let Some(c) = st.conns.get_mut(id) {
                c.rooms.remove(&room);
            }
        }
    }

    /// Offers a pre-serialized event frame of `room` (called `label` on the
    /// wire; not a message: those go through [`Hub::publish_message`]) to
    /// every subscriber, on every node.
    pub(crate) fn publish(&self, room: RoomId, label: &RoomLabel, frame: &Bytes) {
        self.remote_room_event(room, label, frame);
        self.tell(Item::RoomEvent { room, label: label.clone(), frame: frame.clone() });
    }

    /// Offers a room event another node published to this node's
    /// subscribers.
    pub(crate) fn remote_room_event(&self, room: RoomId, label: &RoomLabel, frame: &Bytes) {
        self.lock().publish_local(room, label, frame);
    }

    /// Offers an event frame about room `label` to every connection of
    /// `user` but `except` (the one that caused it).
    pub(crate) fn to_user_except(
        &self,
        tenant: TenantId,
        user: UserId,
        except: ConnId,
        label: &RoomLabel,
        frame: &Bytes,
    ) {
        {
            let st = self.lock();
            let mine = st.users.get(&(tenant, user)).into_iter().flatten();
            for id in mine.filter(|id| **id != except) {
                if let Some(c) = st.conns.get(id) {
                    c.out.offer(frame.clone(), label);
                }
            }
        }
        // The user's connections on other nodes (none of them is `except`).
        self.tell(Item::ToUser { tenant, user, label: label.clone(), frame: frame.clone() });
    }

    /// Relays `user`'s typing event (`frame`) to the room's subscribers but
    /// the user's own connections, on every node, unless one was relayed
    /// less than `interval` ago. Returns whether it was relayed.
    pub(crate) fn typing(
        &self,
        room: RoomId,
        user: UserId,
        label: &RoomLabel,
        frame: &Bytes,
        interval: std::time::Duration,
    ) -> bool {
        let relayed = self.remote_typing(room, user, label, frame, interval);
        if relayed {
            self.tell(Item::Typing { room, user, label: label.clone(), frame: frame.clone() });
        }
        relayed
    }

    /// [`Hub::typing`] for this node's connections, as another node relays
    /// it: rate-limited here too (the same user typing through two nodes
    /// is heard at most once per `interval` from each).
    pub(crate) fn remote_typing(
        &self,
        room: RoomId,
        user: UserId,
        label: &RoomLabel,
        frame: &Bytes,
        interval: std::time::Duration,
    ) -> bool {
        let now = std::time::Instant::now();
        let mut st = self.lock();
        if st.typing.get(&(room, user)).is_some_and(|t| now.duration_since(*t) < interval) {
            return false;
        }
        // Forget the stale entries now and then: the map holds the users
        // typing lately, not everyone who ever typed.
        if st.typing.len() >= st.typing_clean_at.max(TYPING_CLEAN_FROM) {
            st.typing.retain(|_, t| now.duration_since(*t) < interval);
            st.typing_clean_at = (st.typing.len() * 2).max(TYPING_CLEAN_FROM);
        }
        st.typing.insert((room, user), now);
        if let Some(subs) = st.rooms.get(&room) {
            for (id, out) in subs {
                if st.conns.get(id).is_some_and(|c| c.user != user) {
                    out.offer(frame.clone(), label);
                }
            }
        }
        true
    }

    /// Offers an event frame about room `label` to every connection of
    /// `user`, subscribed to the room or not (a `room` or `room.removed`
    /// event), on every node. A full queue marks the room lagged, as for a
    /// room's events.
    pub(crate) fn to_user(&self, tenant: TenantId, user: UserId, label: &RoomLabel, frame: &Bytes) {
        self.remote_to_user(tenant, user, label, frame);
        self.tell(Item::ToUser { tenant, user, label: label.clone(), frame: frame.clone() });
    }

    /// [`Hub::to_user`] for this node's connections, as another node asks.
    pub(crate) fn remote_to_user(
        &self,
        tenant: TenantId,
        user: UserId,
        label: &RoomLabel,
        frame: &Bytes,
    ) {
        let st = self.lock();
        for id in st.users.get(&(tenant, user)).into_iter().flatten() {
            if let Some(c) = st.conns.get(id) {
                c.out.offer(frame.clone(), label);
            }
        }
    }

    /// Delivers a message this node committed (`frame`, its encoded
    /// `message` event) to the room's subscribers here, in seq order, and
    /// hands it to the other nodes.
    pub(crate) fn publish_message(
        &self,
        tenant: TenantId,
        room: RoomId,
        seq: u64,
        label: &RoomLabel,
        frame: &Bytes,
    ) {
        self.remote_message(tenant, room, seq, label, frame);
        self.tell(Item::Message { tenant, room, seq, label: label.clone(), frame: frame.clone() });
    }

    /// Delivers a message committed on another node (or read back from the
    /// database to fill a gap) to this node's subscribers of the room, in
    /// seq order and once. A message past a gap waits, and the bus is asked
    /// to backfill; a room nobody here follows just moves on.
    pub(crate) fn remote_message(
        &self,
        tenant: TenantId,
        room: RoomId,
        seq: u64,
        label: &RoomLabel,
        frame: &Bytes,
    ) {
        let mut st = self.lock();
        let msg = Frame { seq, label: label.clone(), frame: frame.clone() };
        let accepted = st.order.accept(room, tenant, msg, self.cluster.is_some());
        for m in &accepted.deliver {
            st.publish_local(room, &m.label, &m.frame);
        }
        if accepted.gap_after.is_some() {
            if st.rooms.contains_key(&room) {
                self.tell(Outgoing::Backfill { tenant, room, label: label.clone() });
            } else {
                st.order.skip_held(room);
            }
        }
    }

    /// Where a room's delivery stands: the last seq delivered and whether
    /// messages wait past a gap.
    pub(crate) fn position(&self, room: RoomId) -> (u64, bool) {
        self.lock().order.position(room)
    }

    /// Sets a room's baseline (see [`order::Order::baseline`]) unless this
    /// node has subscribers in it (those are filled by a backfill instead).
    /// Returns whether it did.
    pub(crate) fn baseline_if_idle(
        &self,
        room: RoomId,
        tenant: TenantId,
        label: &RoomLabel,
        last: u64,
    ) -> bool {
        let mut st = self.lock();
        if st.rooms.contains_key(&room) {
            return false;
        }
        st.order.baseline(room, tenant, label, last);
        true
    }

    /// The rooms this node has subscribers in, with where their delivery
    /// stands: `(room, tenant, label, last delivered)`.
    pub(crate) fn followed_rooms(&self) -> Vec<(RoomId, TenantId, RoomLabel, u64)> {
        let st = self.lock();
        st.order.known().into_iter().filter(|(room, ..)| st.rooms.contains_key(room)).collect()
    }

    /// Whether the user has a logged-in connection on any node.
    pub(crate) fn is_online(&self, tenant: TenantId, user: UserId) -> bool {
        let st = self.lock();
        st.users.contains_key(&(tenant, user)) || st.remote.is_online((tenant, user))
    }

    /// The users online on this node (for a snapshot to the others).
    pub(crate) fn local_users(&self) -> Vec<OnlineUser> {
        let st = self.lock();
        let names: Vec<((TenantId, UserId), String)> = st
            .users
            .iter()
            .filter_map(|(key, conns)| {
                conns.iter().next().and_then(|id| st.conns.get(id)).map(|c| (*key, c.name.clone()))
            })
            .collect();
        names.into_iter().map(|((t, u), name)| st.online_user(t, u, &name)).collect()
    }

    /// Count and digest of this node's online users (see
    /// [`Control::Heartbeat`]).
    pub(crate) fn local_digest(&self) -> (u64, u64) {
        remote::digest(self.lock().users.keys())
    }

    /// Count and digest of what this node knows of `node`'s users.
    pub(crate) fn remote_digest(&self, node: NodeId) -> (u64, u64) {
        self.lock().remote.digest_of(node)
    }

    /// The other nodes this node knows users of.
    pub(crate) fn remote_nodes(&self) -> Vec<NodeId> {
        self.lock().remote.nodes()
    }

    /// A user came online on `node` (its first connection there) or went
    /// offline there; rooms here hear of it when that changes whether the
    /// user is online at all.
    pub(crate) fn remote_presence(
        &self,
        node: NodeId,
        user: &OnlineUser,
        online: bool,
        reason: Option<String>,
    ) {
        let mut st = self.lock();
        if let Some(change) = st.remote.set(node, user, online) {
            st.announce(node, change, reason);
        }
    }

    /// `node`'s full list of online users replaces what was known of it.
    pub(crate) fn remote_snapshot(&self, node: NodeId, users: &[OnlineUser]) {
        let mut st = self.lock();
        for change in st.remote.replace(node, users) {
            st.announce(node, change, None);
        }
    }

    /// Forgets `node` (it said goodbye, or fell silent): its users go
    /// offline unless they are connected elsewhere.
    pub(crate) fn forget_node(&self, node: NodeId) {
        let mut st = self.lock();
        for change in st.remote.forget(node) {
            st.announce(node, change, Some("node lost".to_owned()));
        }
    }
}

impl State {
    /// Offers a frame of `room` to its subscribers here.
    fn publish_local(&self, room: RoomId, label: &RoomLabel, frame: &Bytes) {
        if let Some(subs) = self.rooms.get(&room) {
            for out in subs.values() {
                out.offer(frame.clone(), label);
            }
        }
    }

    /// A local user as the other nodes learn of it: with the rooms its
    /// connections here follow.
    fn online_user(&self, tenant: TenantId, user: UserId, name: &str) -> OnlineUser {
        let rooms: HashSet<i64> = self
            .users
            .get(&(tenant, user))
            .into_iter()
            .flatten()
            .filter_map(|id| self.conns.get(id))
            .flat_map(|c| c.rooms.iter().map(|r| r.0))
            .collect();
        OnlineUser {
            tenant: tenant.0,
            user: user.0,
            name: name.to_owned(),
            rooms: rooms.into_iter().collect(),
        }
    }

    /// Tells this node's rooms of a remote user's change when it changes
    /// whether the user is online anywhere.
    fn announce(&self, node: NodeId, change: remote::Change, reason: Option<String>) {
        let elsewhere =
            self.users.contains_key(&change.key) || self.remote.is_online_except(change.key, node);
        if elsewhere {
            return;
        }
        let p = Presence { user: change.user.name, online: change.online, reason };
        self.presence_in(&change.user.rooms, None, p);
    }

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

    #[tokio::test]
    async fn presence_and_messages_cross_nodes_through_the_bus_items() {
        // Two nodes' hubs; what one tells its bus is handed to the other
        // by hand, as the bus would.
        let metrics = Arc::new(Metrics::default());
        let (to_bus, mut from_a) = mpsc::channel(BUS_QUEUE);
        let a = Hub::clustered(to_bus, metrics.clone());
        let (to_bus_b, _from_b) = mpsc::channel(BUS_QUEUE);
        let b = Hub::clustered(to_bus_b, metrics);
        let (t, room) = (TenantId(1), RoomId(10));
        let (bob_out, mut bob_rx) = outbound::channel(16);
        b.attach(2, t, UserId(2), "bob", bob_out, &[room]);

        let (ann_out, _ann_rx) = outbound::channel(16);
        a.attach(1, t, UserId(1), "ann", ann_out, &[room]);
        let Some(Outgoing::Item(Item::Control(Control::Presence {
            user,
            online: true,
            reason: None,
        }))) = from_a.recv().await
        else {
            panic!("ann's presence goes to the bus")
        };
        assert_eq!(user.rooms, [10]);
        b.remote_presence(7, &user, true, None);
        let p = next_json(&mut bob_rx).await;
        assert_eq!((p["user"].as_str(), p["online"].as_bool()), (Some("ann"), Some(true)));
        assert!(b.is_online(t, UserId(1)), "members on b count ann");

        // A message committed on a reaches b's subscribers; one past a gap
        // waits there and asks for a backfill.
        let frame = |n: u8| Bytes::from(vec![0, 0, 0, 1, b'0' + n]);
        let general = RoomLabel { name: "general".into(), id: "+0000000000000010".into() };
        a.publish_message(t, room, 1, &general, &frame(1));
        let Some(Outgoing::Item(Item::Message { seq: 1, .. })) = from_a.recv().await else {
            panic!("the message goes to the bus")
        };
        b.remote_message(t, room, 1, &general, &frame(1));
        let mut got = Vec::new();
        assert_eq!(bob_rx.next(&mut got).await, Some(Next::Frames));
        assert_eq!(got, [frame(1)]);
        b.remote_message(t, room, 3, &general, &frame(3));
        assert_eq!(b.position(room), (1, true));
        b.remote_message(t, room, 2, &general, &frame(2));
        got.clear();
        while got.len() < 2 {
            assert_eq!(bob_rx.next(&mut got).await, Some(Next::Frames));
        }
        assert_eq!(got, [frame(2), frame(3)], "in seq order, once");

        // The node goes silent: ann goes offline on b.
        b.forget_node(7);
        let p = next_json(&mut bob_rx).await;
        assert_eq!((p["user"].as_str(), p["online"].as_bool()), (Some("ann"), Some(false)));
        assert!(!b.is_online(t, UserId(1)));
    }

    #[test]
    fn a_full_bus_queue_drops_counts_and_flags() {
        let metrics = Arc::new(Metrics::default());
        let (to_bus, mut from_hub) = mpsc::channel(1);
        let hub = Hub::clustered(to_bus, metrics.clone());
        let label = RoomLabel { name: "r".into(), id: "+0000000000000001".into() };
        let frame = Bytes::from_static(b"\0\0\0\x02{}");
        hub.publish(RoomId(1), &label, &frame);
        assert!(!hub.take_overflow());
        hub.publish(RoomId(1), &label, &frame);
        assert!(hub.take_overflow(), "the second item found the queue full");
        assert!(!hub.take_overflow(), "taken once");
        assert!(metrics.render().contains("qchat_bus_dropped_total 1"));
        assert!(matches!(from_hub.try_recv(), Ok(Outgoing::Item(Item::RoomEvent { .. }))));
        assert!(from_hub.try_recv().is_err(), "the dropped one never came");
    }
}
