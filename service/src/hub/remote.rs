//! What the hub tells the other nodes of a cluster ([`Item`], handed to
//! the bus as [`Outgoing`]) and what it knows of them: who is online on
//! which node ([`Remote`]).
//!
//! The hub never talks to NATS: it hands [`Outgoing`] items to a channel
//! that the bus (`bus.rs`) drains, and the bus calls the hub's `remote_*`
//! methods with what other nodes said. On a single node there is no
//! channel and none of this runs.

use std::collections::{HashMap, HashSet};

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::db::{RoomId, RoomLabel, TenantId, UserId};

/// Identifies one running node (random per process start).
pub(crate) type NodeId = u64;

/// What one node tells the others over the bus: the same item is what
/// the hub hands the bus here ([`Outgoing::Item`]) and what the bus reads
/// off NATS from another node (`bus/wire.rs` encodes and decodes it).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Item {
    /// A message committed on the sending node, in commit order.
    Message {
        /// The room's tenant.
        tenant: TenantId,
        /// The room.
        room: RoomId,
        /// Its seq.
        seq: u64,
        /// How the room is called on the wire.
        label: RoomLabel,
        /// The encoded `message` event.
        frame: Bytes,
    },
    /// Any other event of a room (`member`, ...), delivered as it comes.
    RoomEvent {
        /// The room.
        room: RoomId,
        /// How the room is called on the wire.
        label: RoomLabel,
        /// The encoded event.
        frame: Bytes,
    },
    /// A `typing` event of `user` in a room: for the room's subscribers
    /// but the user's own connections; never stored, rate-limited on every
    /// node that relays it.
    Typing {
        /// The room.
        room: RoomId,
        /// Who is typing.
        user: UserId,
        /// How the room is called on the wire.
        label: RoomLabel,
        /// The encoded event.
        frame: Bytes,
    },
    /// An event about a room for every connection of one user (`room`,
    /// `room.removed`), subscribed to the room or not.
    ToUser {
        /// The user's tenant.
        tenant: TenantId,
        /// The user.
        user: UserId,
        /// How the room is called on the wire.
        label: RoomLabel,
        /// The encoded event.
        frame: Bytes,
    },
    /// Membership, presence and gaps: see [`Control`].
    Control(Control),
}

/// What the hub hands the bus: an item for the other nodes, or work for
/// the bus itself.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    /// Published to the other nodes.
    Item(Item),
    /// A gap opened in a room here: the bus fills it from the database.
    Backfill {
        /// The room's tenant.
        tenant: TenantId,
        /// The room.
        room: RoomId,
        /// How the room is called on the wire.
        label: RoomLabel,
    },
}

impl From<Item> for Outgoing {
    fn from(item: Item) -> Self {
        Self::Item(item)
    }
}

/// A user online on a node, with the rooms its connections there follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OnlineUser {
    /// Tenant id.
    pub(crate) tenant: i64,
    /// User id.
    pub(crate) user: i64,
    /// User name (presence events carry it).
    pub(crate) name: String,
    /// Room ids the user's connections on that node follow.
    pub(crate) rooms: Vec<i64>,
}

impl OnlineUser {
    fn key(&self) -> (TenantId, UserId) {
        (TenantId(self.tenant), UserId(self.user))
    }
}

/// The control messages between nodes (JSON on the bus).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub(crate) enum Control {
    /// Subscribe (`on`) or unsubscribe every connection of a user to a
    /// room (a join, leave, kick or ban made on some node).
    Subscribe {
        /// Tenant id.
        tenant: i64,
        /// User id.
        user: i64,
        /// Room id.
        room: i64,
        /// Subscribe or unsubscribe.
        on: bool,
    },
    /// Sessions were revoked (a password change, a logout elsewhere):
    /// connections logged in with them end.
    Revoke {
        /// The sessions' token hashes, hex.
        sessions: Vec<String>,
    },
    /// A room was deleted: every connection leaves it.
    CloseRoom {
        /// Room id.
        room: i64,
    },
    /// A user's first connection on the sending node opened, or its last
    /// one closed.
    Presence {
        /// The user, with the rooms followed there.
        user: OnlineUser,
        /// Online or offline on the sending node.
        online: bool,
        /// Why the user left (the `quit` reason), for an offline event.
        reason: Option<String>,
    },
    /// A node is alive and has `count` users online whose keys hash to
    /// `digest`; a node whose view differs asks for a snapshot.
    Heartbeat {
        /// Users online on the sender.
        count: u64,
        /// XOR of the users' key hashes.
        digest: u64,
    },
    /// A node (re)joined the bus: every node fills its rooms from the
    /// database (messages of the time it was away may be missing) and
    /// sends it a snapshot.
    Hello,
    /// Asks `node` for its full list of online users.
    SnapshotRequest {
        /// The node asked.
        node: NodeId,
    },
    /// Asks `node` to stop its stream of `upload` and let go of its claim:
    /// the upload resumes on the sender.
    StopUpload {
        /// The node asked.
        node: NodeId,
        /// The upload id.
        upload: String,
    },
    /// The sending node stops: its users go offline (unless connected
    /// elsewhere) at once rather than after its heartbeats stop.
    Bye,
    /// One part of a node's full list of online users.
    Snapshot {
        /// Which snapshot this part belongs to.
        id: u64,
        /// This part's index, from 0.
        part: u32,
        /// How many parts the snapshot has.
        parts: u32,
        /// The users of this part.
        users: Vec<OnlineUser>,
    },
}

/// The digest of a set of user keys in [`Control::Heartbeat`].
pub(crate) fn digest<'a>(keys: impl Iterator<Item = &'a (TenantId, UserId)>) -> (u64, u64) {
    let mut count = 0;
    let mut x = 0u64;
    for (t, u) in keys {
        count += 1;
        // A fixed mix (splitmix64) so that every node computes the same.
        let mut z = (t.0 as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (u.0 as u64);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        x ^= z ^ (z >> 31);
    }
    (count, x)
}

/// A remote user's entry.
#[derive(Debug, Clone)]
pub(super) struct RemoteUser {
    pub(super) name: String,
    pub(super) rooms: HashSet<RoomId>,
}

/// Who is online on each other node.
#[derive(Debug, Default)]
pub(super) struct Remote {
    nodes: HashMap<NodeId, HashMap<(TenantId, UserId), RemoteUser>>,
}

/// A change of a remote user's state, for presence events.
pub(super) struct Change {
    pub(super) key: (TenantId, UserId),
    pub(super) user: RemoteUser,
    pub(super) online: bool,
}

impl Remote {
    /// Whether the user is online on some other node.
    pub(super) fn is_online(&self, key: (TenantId, UserId)) -> bool {
        self.nodes.values().any(|users| users.contains_key(&key))
    }

    /// Records a presence change on `node`; returns the entry that changed.
    pub(super) fn set(&mut self, node: NodeId, user: &OnlineUser, online: bool) -> Option<Change> {
        let users = self.nodes.entry(node).or_default();
        let entry = RemoteUser {
            name: user.name.clone(),
            rooms: user.rooms.iter().map(|r| RoomId(*r)).collect(),
        };
        if online {
            let fresh = users.insert(user.key(), entry.clone()).is_none();
            fresh.then(|| Change { key: user.key(), user: entry, online: true })
        } else {
            let gone = users.remove(&user.key());
            gone.map(|user_entry| Change { key: user.key(), user: user_entry, online: false })
        }
    }

    /// Replaces `node`'s whole list; returns who came and who went.
    pub(super) fn replace(&mut self, node: NodeId, list: &[OnlineUser]) -> Vec<Change> {
        let new: HashMap<(TenantId, UserId), RemoteUser> = list
            .iter()
            .map(|u| {
                let entry = RemoteUser {
                    name: u.name.clone(),
                    rooms: u.rooms.iter().map(|r| RoomId(*r)).collect(),
                };
                (u.key(), entry)
            })
            .collect();
        let old = self.nodes.remove(&node).unwrap_or_default();
        let mut changes = Vec::new();
        for (key, user) in &old {
            if !new.contains_key(key) {
                changes.push(Change { key: *key, user: user.clone(), online: false });
            }
        }
        for (key, user) in &new {
            if !old.contains_key(key) {
                changes.push(Change { key: *key, user: user.clone(), online: true });
            }
        }
        self.nodes.insert(node, new);
        changes
    }

    /// Whether the user is online on a node other than `node`.
    pub(super) fn is_online_except(&self, key: (TenantId, UserId), node: NodeId) -> bool {
        self.nodes.iter().any(|(n, users)| *n != node && users.contains_key(&key))
    }

    /// A remote user joined (`on`) or left `room`: the rooms its presence
    /// changes are told to follow.
    pub(super) fn follow(&mut self, key: (TenantId, UserId), room: RoomId, on: bool) {
        for users in self.nodes.values_mut() {
            if let Some(u) = users.get_mut(&key) {
                if on {
                    u.rooms.insert(room);
                } else {
                    u.rooms.remove(&room);
                }
            }
        }
    }

    /// Forgets a node (it stopped, or fell silent); returns who went.
    pub(super) fn forget(&mut self, node: NodeId) -> Vec<Change> {
        self.nodes
            .remove(&node)
            .unwrap_or_default()
            .into_iter()
            .map(|(key, user)| Change { key, user, online: false })
            .collect()
    }

    /// `node`'s users as this node knows them (for heartbeat digests).
    pub(super) fn digest_of(&self, node: NodeId) -> (u64, u64) {
        self.nodes.get(&node).map_or((0, 0), |users| digest(users.keys()))
    }

    /// The nodes known.
    pub(super) fn nodes(&self) -> Vec<NodeId> {
        self.nodes.keys().copied().collect()
    }
}
