//! The bus: the live path between the nodes of a cluster, over NATS.
//!
//! The hub tells the bus what happened on this node (`hub::remote::Item`,
//! handed over as an `Outgoing`: committed messages, other room events,
//! joins and leaves, presence) and the bus publishes it; what the other nodes publish, the bus hands to the
//! hub's `remote_*` methods. The database stays the only truth: NATS never
//! decides what is stored, and anything it loses is read back from the
//! database. A room whose seqs jump on this node (a message from another
//! node overtook one still in flight, or NATS dropped one) is filled from
//! the database before anything past the gap is delivered; after this node
//! reconnects to NATS, or another node says it did, every room followed
//! here is filled the same way. Presence is kept per node: each node says
//! when a user's first connection there opens and the last closes, sends a
//! heartbeat with a digest of its online users every `heartbeat_ms` (a node
//! whose view differs asks for a snapshot), and a node silent for five
//! heartbeats is taken for dead, its users for offline.
//!
//! A single node has no bus: the hub delivers on its own, and nothing here
//! runs or connects.

mod recheck;
mod wire;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::{StreamExt as _, TryStreamExt as _};
use qchat_protocol::{Event, encode_json};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::Cluster;
use crate::db::{self, Db, RoomId, RoomLabel, TenantId};
use crate::hub::Hub;
use crate::hub::remote::{Control, Item, NodeId, OnlineUser, Outgoing};
use crate::transfer::Transfers;

/// Messages read from the database per backfill query.
const FILL_PAGE: u32 = 500;
/// How long a gap may close by itself (the missing message still on its
/// way) before the database is asked.
const GAP_GRACE: Duration = Duration::from_millis(100);
/// Attempts of one backfill while the database is unavailable, a second
/// apart.
const FILL_ATTEMPTS: u32 = 60;
/// Online users per snapshot part (a NATS message stays far below 1 MiB).
const SNAPSHOT_PART: usize = 1000;
/// Heartbeats a node may miss before it is taken for dead.
const MISSED_HEARTBEATS: u32 = 5;
/// How long a publish may wait for the NATS client; past it the item is
/// dropped (the receivers backfill) rather than stall this node.
const PUBLISH_WAIT: Duration = Duration::from_millis(200);
/// How long this node waits for NATS to confirm its subscription after a
/// (re)connection before it gives that connection up for lost.
const SUBSCRIBE_WAIT: Duration = Duration::from_secs(5);

/// Why the bus could not start.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BusError {
    /// The NATS URL or options were refused.
    #[error("connecting to NATS at {url}: {message}")]
    Connect {
        /// The configured URL.
        url: String,
        /// The client's explanation.
        message: String,
    },
}

/// The bus of one node: its NATS connection and subscription, and the
/// channel the hub reports on.
pub(crate) struct Bus {
    node: NodeId,
    name: String,
    client: async_nats::Client,
    subscriber: async_nats::Subscriber,
    connection_events: mpsc::Receiver<async_nats::Event>,
    from_hub: mpsc::Receiver<Outgoing>,
    heartbeat: Duration,
}

impl Bus {
    /// Connects to NATS (in the background: a node starts while NATS is
    /// down and joins when it comes up) and subscribes to every node's
    /// subjects. `node` is this node's id (random per start), `from_hub`
    /// the hub's channel (`Hub::clustered`).
    ///
    /// # Errors
    /// [`BusError::Connect`] when the URL is unusable.
    pub(crate) async fn connect(
        cfg: &Cluster,
        node: NodeId,
        from_hub: mpsc::Receiver<Outgoing>,
    ) -> Result<Self, BusError> {
        let name = if cfg.node_name.is_empty() {
            format!("{}-{}", hostname(), std::process::id())
        } else {
            cfg.node_name.clone()
        };
        let err = |e: &dyn std::fmt::Display| BusError::Connect {
            url: cfg.nats_url.clone(),
            message: e.to_string(),
        };
        let (events_tx, connection_events) = mpsc::channel(64);
        let client = async_nats::ConnectOptions::new()
            .name(format!("qchatd {name}"))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .reconnect_delay_callback(|attempt| {
                Duration::from_millis((250 * attempt as u64).clamp(100, 1000))
            })
            .event_callback(move |ev| {
                let tx = events_tx.clone();
                async move {
                    // A full queue only loses a duplicate notice.
                    let _ = tx.try_send(ev);
                }
            })
            .connect(cfg.nats_url.as_str())
            .await
            .map_err(|e| err(&e))?;
        let subscriber = client.subscribe(wire::SUBJECT_ALL).await.map_err(|e| err(&e))?;
        tracing::info!(node = %name, id = %format!("{node:016x}"), url = %cfg.nats_url, "cluster bus");
        Ok(Self {
            node,
            name,
            client,
            subscriber,
            connection_events,
            from_hub,
            heartbeat: Duration::from_millis(cfg.heartbeat_ms.max(50)),
        })
    }

    /// Runs until `cancel`: publishes what the hub reports, hands the
    /// other nodes' items to the hub, fills gaps from the database, keeps
    /// the other nodes' presence. Says goodbye on the way out.
    pub(crate) async fn run(
        mut self,
        hub: Arc<Hub>,
        pool: Db,
        transfers: Arc<Transfers>,
        cancel: CancellationToken,
    ) {
        let mut state = State {
            transfers,
            hub: hub.clone(),
            pool,
            seen: HashMap::new(),
            asked: HashMap::new(),
            snapshots: HashMap::new(),
            filling: Arc::default(),
            gate: Arc::default(),
            fills: JoinSet::new(),
        };
        let mut tick = tokio::time::interval(self.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                item = self.from_hub.recv() => match item {
                    Some(Outgoing::Backfill { tenant, room, label }) => {
                        state.fill(room, tenant, label, GAP_GRACE);
                    }
                    Some(Outgoing::Item(item)) => self.send(item).await,
                    None => break,
                },
                msg = self.subscriber.next() => match msg {
                    Some(msg) => self.receive(&mut state, msg.payload).await,
                    None => {
                        tracing::error!("the bus subscription ended");
                        break;
                    }
                },
                Some(ev) = self.connection_events.recv() => match ev {
                    async_nats::Event::Connected => {
                        // The client reports the connection before it has
                        // sent the subscription again; a flush (a PING
                        // answered after it) proves the server has it, so
                        // that nothing published from here on is missed.
                        match tokio::time::timeout(SUBSCRIBE_WAIT, self.client.flush()).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                tracing::warn!(cause = %e, "NATS lost again before subscribing");
                                continue;
                            }
                            Err(_) => {
                                tracing::warn!("NATS did not confirm the subscription in time");
                                continue;
                            }
                        }
                        tracing::info!(node = %self.name, "connected to NATS; re-checking sessions and rooms, filling rooms from the database");
                        hub.bus_up();
                        self.control(&Control::Hello).await;
                        self.snapshot(&hub).await;
                        state.rejoin();
                    }
                    async_nats::Event::Disconnected => {
                        tracing::warn!(node = %self.name, "lost NATS; other nodes' events wait for it");
                    }
                    other => tracing::debug!(event = %other, "NATS"),
                },
                _ = tick.tick() => {
                    if hub.take_overflow() {
                        // What the hub dropped: every node (this one for its
                        // dropped backfills) reads it from the database.
                        tracing::warn!(node = %self.name, "bus queue overflowed; asking every node to re-read");
                        self.control(&Control::Hello).await;
                        state.rejoin();
                    }
                    let (count, digest) = hub.local_digest();
                    self.control(&Control::Heartbeat { count, digest }).await;
                    state.expire(self.heartbeat * MISSED_HEARTBEATS);
                }
                Some(_) = state.fills.join_next(), if !state.fills.is_empty() => {}
            }
        }
        state.fills.abort_all();
        self.control(&Control::Bye).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.client.flush()).await;
        tracing::debug!("bus stopped");
    }

    /// Publishes one item of this node's.
    async fn send(&self, item: Item) {
        let (subject, payload) = match item {
            Item::Message { tenant, room, seq, label, frame } => (
                wire::room_subject(room),
                wire::message(self.node, tenant, room, seq, &label, &frame),
            ),
            Item::RoomEvent { room, label, frame } => {
                (wire::room_subject(room), wire::room_event(self.node, room, &label, &frame))
            }
            Item::ToUser { tenant, user, label, frame } => {
                (wire::user_subject(user), wire::to_user(self.node, tenant, user, &label, &frame))
            }
            Item::Typing { room, user, label, frame } => {
                (wire::room_subject(room), wire::typing(self.node, room, user, &label, &frame))
            }
            Item::Control(c) => return self.control(&c).await,
        };
        self.publish(subject, payload).await;
    }

    async fn control(&self, c: &Control) {
        match wire::control(self.node, c) {
            Ok(payload) => self.publish(wire::SUBJECT_CONTROL.to_owned(), payload).await,
            Err(e) => tracing::error!(cause = %e, "encoding a bus control message"),
        }
    }

    /// Publishes, or drops when NATS is not there: the other nodes fill
    /// what they miss from the database once it is back.
    async fn publish(&self, subject: String, payload: bytes::Bytes) {
        if self.client.connection_state() != async_nats::connection::State::Connected {
            tracing::trace!(%subject, "NATS down; not published");
            return;
        }
        match tokio::time::timeout(PUBLISH_WAIT, self.client.publish(subject, payload)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::debug!(cause = %e, "publish failed"),
            Err(_) => tracing::debug!("publish timed out"),
        }
    }

    /// This node's online users, in parts.
    async fn snapshot(&self, hub: &Hub) {
        let users = hub.local_users();
        let id: u64 = rand::random();
        let parts = users.chunks(SNAPSHOT_PART).count().max(1);
        let mut chunks: Vec<Vec<OnlineUser>> =
            users.chunks(SNAPSHOT_PART).map(<[OnlineUser]>::to_vec).collect();
        if chunks.is_empty() {
            chunks.push(Vec::new());
        }
        for (part, users) in chunks.into_iter().enumerate() {
            let c = Control::Snapshot { id, part: part as u32, parts: parts as u32, users };
            self.control(&c).await;
        }
    }

    /// Handles one payload from the bus.
    async fn receive(&self, state: &mut State, payload: bytes::Bytes) {
        let Some((node, item)) = wire::decode(payload) else {
            tracing::debug!("malformed bus payload ignored");
            return;
        };
        if node == self.node {
            return;
        }
        state.seen.insert(node, Instant::now());
        let hub = &state.hub.clone();
        match item {
            Item::Message { tenant, room, seq, label, frame } => {
                hub.remote_message(tenant, room, seq, &label, &frame);
            }
            Item::RoomEvent { room, label, frame } => {
                hub.remote_room_event(room, &label, &frame);
            }
            Item::ToUser { tenant, user, label, frame } => {
                hub.remote_to_user(tenant, user, &label, &frame);
            }
            Item::Typing { room, user, label, frame } => {
                // The typer's node limits it already; this half interval
                // only guards against a flood, and lets relays sent one
                // interval apart through that arrive a little closer.
                let interval = Duration::from_millis(qchat_protocol::TYPING_INTERVAL_MS / 2);
                hub.remote_typing(room, user, &label, &frame, interval);
            }
            Item::Control(c) => match c {
                Control::Subscribe { tenant, user, room, on } => {
                    hub.remote_subscribe(TenantId(tenant), db::UserId(user), RoomId(room), on);
                }
                Control::Presence { user, online, reason } => {
                    hub.remote_presence(node, &user, online, reason);
                }
                Control::Heartbeat { count, digest } => {
                    if hub.remote_digest(node) != (count, digest)
                        && state.may_ask(node, self.heartbeat)
                    {
                        self.control(&Control::SnapshotRequest { node }).await;
                    }
                }
                Control::Hello => {
                    // It may have missed ours, and what it did while away
                    // (or dropped on a full queue) may have missed us:
                    // messages, revocations, memberships.
                    self.snapshot(hub).await;
                    state.rejoin();
                }
                Control::SnapshotRequest { node: asked } => {
                    if asked == self.node {
                        self.snapshot(hub).await;
                    }
                }
                Control::Snapshot { id, part, parts, users } => {
                    state.snapshot_part(node, id, part, parts, users);
                }
                Control::CloseRoom { room } => hub.remote_close_room(RoomId(room)),
                Control::StopUpload { node: asked, upload } => {
                    if asked == self.node {
                        let transfers = state.transfers.clone();
                        // Waits for nothing but a database update at most.
                        state.fills.spawn(async move {
                            transfers.stop_for_other_node(&upload).await;
                        });
                    }
                }
                Control::Revoke { sessions } => {
                    let hashes: Vec<Vec<u8>> =
                        sessions.iter().filter_map(|h| hex::decode(h).ok()).collect();
                    hub.remote_revoke(&hashes);
                }
                Control::Bye => {
                    state.seen.remove(&node);
                    hub.forget_node(node);
                }
            },
        }
    }
}

/// A snapshot being assembled: its id and parts so far.
type Assembly = (u64, Vec<Option<Vec<OnlineUser>>>);

/// What the bus keeps between items.
struct State {
    hub: Arc<Hub>,
    /// For the other nodes' requests to stop an upload stream.
    transfers: Arc<Transfers>,
    pool: Db,
    /// When each other node was last heard of.
    seen: HashMap<NodeId, Instant>,
    /// When a snapshot was last asked of each node.
    asked: HashMap<NodeId, Instant>,
    snapshots: HashMap<NodeId, Assembly>,
    /// Rooms being filled, so that one gap gets one backfill.
    filling: Arc<Mutex<HashSet<RoomId>>>,
    /// Held (write) by a re-check after joining the bus, taken (read) by
    /// every fill: a room's missed messages reach only the connections
    /// still entitled to them once the re-check has applied the kicks and
    /// revocations this node missed.
    gate: Arc<tokio::sync::RwLock<()>>,
    fills: JoinSet<()>,
}

impl State {
    /// Whether a snapshot may be asked of `node` now (once per two
    /// heartbeats: a digest differs for a moment while a change travels).
    fn may_ask(&mut self, node: NodeId, heartbeat: Duration) -> bool {
        let now = Instant::now();
        match self.asked.get(&node) {
            Some(at) if now.duration_since(*at) < heartbeat * 2 => false,
            _ => {
                self.asked.insert(node, now);
                true
            }
        }
    }

    fn snapshot_part(
        &mut self,
        node: NodeId,
        id: u64,
        part: u32,
        parts: u32,
        users: Vec<OnlineUser>,
    ) {
        let (part, parts) = (part as usize, parts as usize);
        if parts == 0 || part >= parts || parts > 1 << 16 {
            return;
        }
        let entry = self.snapshots.entry(node).or_insert_with(|| (id, vec![None; parts]));
        if entry.0 != id || entry.1.len() != parts {
            *entry = (id, vec![None; parts]);
        }
        entry.1[part] = Some(users);
        if entry.1.iter().all(Option::is_some) {
            let all: Vec<OnlineUser> = self
                .snapshots
                .remove(&node)
                .into_iter()
                .flat_map(|(_, p)| p)
                .flatten()
                .flatten()
                .collect();
            self.hub.remote_snapshot(node, &all);
        }
    }

    /// Forgets the nodes silent for longer than `after`.
    fn expire(&mut self, after: Duration) {
        let now = Instant::now();
        let dead: Vec<NodeId> = self
            .seen
            .iter()
            .filter(|(_, at)| now.duration_since(**at) > after)
            .map(|(n, _)| *n)
            .collect();
        for node in dead {
            tracing::warn!(node = %format!("{node:016x}"), "node silent; its users go offline");
            self.seen.remove(&node);
            self.snapshots.remove(&node);
            self.hub.forget_node(node);
        }
        // A node known only from an old snapshot.
        for node in self.hub.remote_nodes() {
            if !self.seen.contains_key(&node) {
                self.hub.forget_node(node);
            }
        }
    }

    /// Fills one room's gap from the database after `grace`, unless a fill
    /// of that room is on already.
    fn fill(&mut self, room: RoomId, tenant: TenantId, label: RoomLabel, grace: Duration) {
        if !lock(&self.filling).insert(room) {
            return;
        }
        let (pool, hub, filling) = (self.pool.clone(), self.hub.clone(), self.filling.clone());
        let gate = self.gate.clone();
        self.fills.spawn(async move {
            tokio::time::sleep(grace).await;
            let _open = gate.read().await;
            fill_room(&pool, &hub, &filling, room, tenant, &label).await;
        });
    }

    /// After this node (re)joined the bus: re-checks its connections'
    /// sessions and rooms against the database (`recheck.rs`), then
    /// [`State::resync`]s. Fills wait for the re-check.
    fn rejoin(&mut self) {
        let (pool, hub) = (self.pool.clone(), self.hub.clone());
        // Taken now, before any fill that the items arriving from here on
        // may start; a re-check still running is waited for in the task.
        let early = self.gate.clone().try_write_owned().ok();
        let gate = self.gate.clone();
        self.fills.spawn(async move {
            let shut = match early {
                Some(g) => g,
                None => gate.write_owned().await,
            };
            recheck::run(&pool, &hub).await;
            drop(shut);
        });
        self.resync();
    }

    /// Fills every room followed here from the database and moves the
    /// others' baselines to it: after this node reconnected to NATS, or
    /// another node did.
    fn resync(&mut self) {
        let (pool, hub, filling) = (self.pool.clone(), self.hub.clone(), self.filling.clone());
        let gate = self.gate.clone();
        self.fills.spawn(async move {
            let _open = gate.read().await;
            if let Err(e) = load_baselines(&pool, &hub).await {
                tracing::warn!(cause = %e, "reading room positions");
            }
            for (room, tenant, label, _) in hub.followed_rooms() {
                if lock(&filling).insert(room) {
                    fill_room(&pool, &hub, &filling, room, tenant, &label).await;
                }
            }
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads a room's messages after the last one delivered here and hands
/// them to the hub, until the database has no more and no gap remains;
/// retried while the database is unavailable. The caller put `room` in
/// `filling`; this takes it out.
async fn fill_room(
    pool: &Db,
    hub: &Hub,
    filling: &Mutex<HashSet<RoomId>>,
    room: RoomId,
    tenant: TenantId,
    label: &RoomLabel,
) {
    let mut attempts = 0;
    loop {
        match fill_once(pool, hub, room, tenant, label).await {
            Ok(()) => {
                lock(filling).remove(&room);
                // A gap that opened while the last page was read.
                if !hub.position(room).1 || !lock(filling).insert(room) {
                    return;
                }
            }
            Err(e) => {
                attempts += 1;
                if attempts >= FILL_ATTEMPTS {
                    tracing::error!(room = room.0, cause = %e, "backfill given up");
                    lock(filling).remove(&room);
                    return;
                }
                tracing::warn!(room = room.0, cause = %e, "backfill failed; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

async fn fill_once(
    pool: &Db,
    hub: &Hub,
    room: RoomId,
    tenant: TenantId,
    label: &RoomLabel,
) -> Result<(), sqlx::Error> {
    loop {
        let (last, _) = hub.position(room);
        // As events: nobody's reactions are `me`, and counts are left to
        // history (the `reacted` and reply messages themselves follow).
        let reading =
            db::messages::Reading { tenant, room, label: label.clone(), viewer: db::UserId(0) };
        let page: Vec<_> =
            db::messages::after(pool, &reading, last, FILL_PAGE).try_collect().await?;
        if page.is_empty() {
            return Ok(());
        }
        tracing::debug!(room = room.0, after = last, count = page.len(), "backfill");
        for mut msg in page {
            msg.reactions = Box::default();
            msg.replies = 0;
            let seq = msg.seq;
            match encode_json(&Event::Message(msg)) {
                Ok(frame) => hub.remote_message(tenant, room, seq, label, &frame),
                Err(e) => tracing::error!(cause = %e, "encoding a backfilled message"),
            }
        }
        if hub.position(room).0 <= last {
            return Ok(());
        }
    }
}

/// Sets every room's delivery baseline to the database's last seq, for the
/// rooms nobody on this node follows (at start: every room), so that
/// messages committed from now on are delivered in order from there.
///
/// # Errors
/// Database errors.
pub(crate) async fn load_baselines(pool: &Db, hub: &Hub) -> Result<usize, sqlx::Error> {
    let rooms = db::cluster::room_positions(pool).await?;
    let mut set = 0;
    for (room, tenant, label, last) in rooms {
        set += usize::from(hub.baseline_if_idle(room, tenant, &label, last));
    }
    Ok(set)
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "qchatd".to_owned())
}
