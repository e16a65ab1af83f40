//! The model of who may see what (DESIGN.md 1a, docs/PROTOCOL.md §10),
//! written from the documents, not from the server's code: rooms with their
//! kinds, members, roles, invitations and bans; what each user may see and
//! read; how a room reference resolves for a user; and, for each operation,
//! the answer the server must give.

use std::collections::{BTreeMap, BTreeSet};

/// A room's kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Public,
    Private,
    Dm,
}

impl Kind {
    pub(super) fn wire(self) -> &'static str {
        match self {
            Self::Public => "public",
            Self::Private => "private",
            Self::Dm => "dm",
        }
    }
}

/// A member's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Role {
    Member,
    Moderator,
    Owner,
}

impl Role {
    pub(super) fn wire(self) -> &'static str {
        match self {
            Self::Member => "member",
            Self::Moderator => "moderator",
            Self::Owner => "owner",
        }
    }
}

/// What an operation must answer: `Ok`, or an error code (and for a room
/// that does not exist for the caller, the exact message).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Expect {
    Ok,
    Err(&'static str),
    /// `not_found` with exactly this message.
    Missing(String),
}

pub(super) struct User {
    pub(super) tenant: usize,
    pub(super) name: String,
    pub(super) admin: bool,
}

pub(super) struct Room {
    pub(super) tenant: usize,
    /// The room id (`+` and hex), from the server.
    pub(super) id: String,
    /// A public room's name, a private room's title; empty for a DM.
    pub(super) name: String,
    pub(super) kind: Kind,
    pub(super) members: BTreeMap<usize, Role>,
    pub(super) invited: BTreeSet<usize>,
    pub(super) banned: BTreeSet<usize>,
    pub(super) archived: bool,
    pub(super) topic: String,
    pub(super) deleted: bool,
    /// In the body of every message sent to it.
    pub(super) secret: String,
    /// Numbers of the users' text messages not deleted, in order.
    pub(super) texts: Vec<u64>,
    /// Every message a user sent (text or file), in order.
    pub(super) log: Vec<Msg>,
    /// Per member, the message counter when they (last) joined: mentions
    /// count for them after it.
    pub(super) joined: BTreeMap<usize, u64>,
}

/// A message a user sent, as the counts see it.
pub(super) struct Msg {
    /// The model's message number (also in a text's body).
    pub(super) n: u64,
    /// Its seq in the room.
    pub(super) seq: u64,
    pub(super) sender: usize,
    /// A text (else a file offer).
    pub(super) text: bool,
    /// The members it mentions by name (members when it was committed).
    pub(super) named: BTreeSet<usize>,
    /// It says `@room`.
    pub(super) everyone: bool,
    pub(super) deleted: bool,
    /// The number of the message it replies to.
    pub(super) reply_to: Option<u64>,
}

/// An offer of a stored file (a file message): the wire's file id, in one
/// room.
pub(super) struct File {
    pub(super) tenant: usize,
    pub(super) id: u64,
    /// Content number (per tenant).
    pub(super) content: u8,
    pub(super) room: usize,
}

/// How a request names a room.
#[derive(Debug, Clone)]
pub(super) enum Ref {
    Name(String),
    Id(String),
    /// `@` and these user names.
    Alias(Vec<String>),
}

impl Ref {
    pub(super) fn wire(&self) -> String {
        match self {
            Self::Name(n) | Self::Id(n) => n.clone(),
            Self::Alias(names) => format!("@{}", names.join(",")),
        }
    }
}

/// Everything the model knows.
#[derive(Default)]
pub(super) struct World {
    pub(super) users: Vec<User>,
    pub(super) rooms: Vec<Room>,
    pub(super) files: Vec<File>,
    /// Per room, everyone who could ever see it / read it.
    pub(super) ever_seen: Vec<BTreeSet<usize>>,
    pub(super) ever_read: Vec<BTreeSet<usize>>,
    /// Per message number: its room and the members when it was committed
    /// (who may receive it as an event).
    pub(super) messages: BTreeMap<u64, (usize, BTreeSet<usize>)>,
}

impl World {
    pub(super) fn visible(&self, u: usize, r: usize) -> bool {
        let (user, room) = (&self.users[u], &self.rooms[r]);
        if room.deleted || room.tenant != user.tenant {
            return false;
        }
        let member = room.members.contains_key(&u);
        match room.kind {
            Kind::Public => true,
            Kind::Private => member || room.invited.contains(&u) || user.admin,
            Kind::Dm => member,
        }
    }

    pub(super) fn readable(&self, u: usize, r: usize) -> bool {
        let room = &self.rooms[r];
        self.visible(u, r)
            && (room.members.contains_key(&u) || self.users[u].admin && room.kind != Kind::Dm)
    }

    fn rank(&self, u: usize, r: usize) -> u8 {
        let room = &self.rooms[r];
        if room.kind == Kind::Dm {
            return u8::from(room.members.contains_key(&u));
        }
        if self.users[u].admin {
            return 4;
        }
        room.members.get(&u).map_or(0, |role| *role as u8 + 1)
    }

    /// Records who can see and read each room now (call after each change).
    pub(super) fn refresh(&mut self) {
        self.ever_seen.resize(self.rooms.len(), BTreeSet::new());
        self.ever_read.resize(self.rooms.len(), BTreeSet::new());
        for r in 0..self.rooms.len() {
            for u in 0..self.users.len() {
                if self.visible(u, r) {
                    self.ever_seen[r].insert(u);
                }
                if self.readable(u, r) {
                    self.ever_read[r].insert(u);
                }
            }
        }
    }

    /// The user of `name` in `tenant`.
    pub(super) fn user_named(&self, tenant: usize, name: &str) -> Option<usize> {
        self.users.iter().position(|u| u.tenant == tenant && u.name == name)
    }

    /// The room `reference` means to `u`, or the answer when it means none.
    pub(super) fn resolve(&self, u: usize, reference: &Ref) -> Result<usize, Expect> {
        let tenant = self.users[u].tenant;
        let missing = || Expect::Missing(format!("no room named {}", reference.wire()));
        let candidates: Vec<usize> = match reference {
            Ref::Id(id) => self
                .rooms
                .iter()
                .enumerate()
                .filter(|(_, r)| r.tenant == tenant && !r.deleted && r.id == *id)
                .map(|(i, _)| i)
                .collect(),
            Ref::Name(n) => self
                .rooms
                .iter()
                .enumerate()
                .filter(|(_, r)| {
                    r.tenant == tenant && !r.deleted && r.kind != Kind::Dm && r.name == *n
                })
                .map(|(i, _)| i)
                .collect(),
            Ref::Alias(names) => {
                let mut set = BTreeSet::new();
                for n in names {
                    match self.user_named(tenant, n) {
                        Some(v) => drop(set.insert(v)),
                        None => return Err(missing()),
                    }
                }
                set.insert(u);
                self.rooms
                    .iter()
                    .enumerate()
                    .filter(|(_, r)| {
                        r.tenant == tenant
                            && !r.deleted
                            && r.kind == Kind::Dm
                            && r.members.keys().copied().collect::<BTreeSet<_>>() == set
                    })
                    .map(|(i, _)| i)
                    .collect()
            }
        };
        let seen: Vec<usize> = candidates.into_iter().filter(|r| self.visible(u, *r)).collect();
        match seen.as_slice() {
            [] => Err(missing()),
            [r] => Ok(*r),
            _ => Err(Expect::Err("conflict")),
        }
    }

    /// The rules: may `u` do `need` in room `r` (which `u` resolved)?
    pub(super) fn decide(&self, u: usize, r: usize, need: Need) -> Expect {
        let room = &self.rooms[r];
        let member = room.members.contains_key(&u);
        let dm = room.kind == Kind::Dm;
        let allowed = match need {
            Need::Read => member || self.users[u].admin && !dm,
            Need::Post => member && !room.archived,
            Need::Join => member || !room.banned.contains(&u) && !room.archived,
            Need::Leave => !dm,
            Need::Moderate => !dm && self.rank(u, r) >= 2,
            Need::Own => !dm && self.rank(u, r) >= 3,
        };
        if allowed { Expect::Ok } else { Expect::Err("forbidden") }
    }

    /// Whether `u` moderates room `r` (a moderator, owner or admin; nobody
    /// in a DM).
    pub(super) fn moderates(&self, u: usize, r: usize) -> bool {
        self.rank(u, r) >= 2
    }

    pub(super) fn outranks(&self, actor: usize, target: usize, r: usize) -> bool {
        self.rank(actor, r) > self.rank(target, r)
    }

    /// A private or public room name in use among the rooms `u` sees (a
    /// creation or rename must not make two of them share it).
    pub(super) fn name_seen(&self, u: usize, name: &str) -> bool {
        (0..self.rooms.len()).any(|r| {
            let room = &self.rooms[r];
            room.kind != Kind::Dm && room.name == name && self.visible(u, r)
        })
    }

    /// A live public room of the tenant has `name` (other than `except`).
    pub(super) fn public_named(&self, tenant: usize, name: &str, except: Option<usize>) -> bool {
        self.rooms.iter().enumerate().any(|(i, r)| {
            Some(i) != except
                && r.tenant == tenant
                && !r.deleted
                && r.kind == Kind::Public
                && r.name == name
        })
    }

    /// Whether `u` reads a room with a live offer of content `k` of the
    /// tenant (then it is offered again without being sent).
    pub(super) fn reuses(&self, u: usize, tenant: usize, k: u8) -> bool {
        self.files.iter().any(|f| f.tenant == tenant && f.content == k && self.readable(u, f.room))
    }

    /// What `file.get` of offer `f` must answer to `u`: what its room
    /// allows (a deleted room's offer is gone).
    pub(super) fn file_get(&self, u: usize, f: usize) -> Expect {
        let file = &self.files[f];
        if file.tenant != self.users[u].tenant || !self.visible(u, file.room) {
            Expect::Missing("no such file".into())
        } else if self.readable(u, file.room) {
            Expect::Ok
        } else {
            Expect::Err("forbidden")
        }
    }

    /// `u`'s `unread` and `mentions` in room `r` (PROTOCOL.md section 12):
    /// the messages of others not deleted since `u` (last) joined (a join
    /// puts the read marker at the room's end, and it never moves here),
    /// and those of them that mention `u` by name or `@room`; zero for a
    /// non-member.
    pub(super) fn counts(&self, u: usize, r: usize) -> (usize, usize) {
        let room = &self.rooms[r];
        let Some(since) = room.joined.get(&u).filter(|_| room.members.contains_key(&u)) else {
            return (0, 0);
        };
        let theirs = room.log.iter().filter(|m| !m.deleted && m.sender != u && m.n > *since);
        let unread = theirs.clone().count();
        let mentions = theirs.filter(|m| m.everyone || m.named.contains(&u)).count();
        (unread, mentions)
    }

    /// The title `u` sees for a DM: `@` and the others, by name.
    pub(super) fn dm_title(&self, u: usize, r: usize) -> String {
        let mut others: Vec<&str> = self.rooms[r]
            .members
            .keys()
            .filter(|m| **m != u)
            .map(|m| self.users[*m].name.as_str())
            .collect();
        others.sort_unstable();
        format!("@{}", others.join(","))
    }
}

/// What an operation needs in its room (the six of the rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Need {
    Read,
    Post,
    Join,
    Leave,
    Moderate,
    Own,
}
