//! Tenant isolation as a property (issue 8, item 4): random sequences of
//! every operation — hello, register, login, resume, logout, rooms,
//! room.create, room.join, room.leave, members, send, history, sync, read,
//! upload.begin with its upload stream, upload.status, file.get with its
//! download stream — by three users in each of two tenants, including
//! probes that name the other tenant's rooms, files and uploads (an upload
//! stream whose header names the other tenant's upload among them). Every
//! name, body and file a tenant creates carries that tenant's marker; the
//! property is that no reply, event or downloaded byte a client receives
//! ever carries the other tenant's marker (in a probe's reply, once the
//! names the client sent itself are taken out), that every probe gets
//! `not_found` (indistinguishable from a missing thing), and that content
//! stored by one tenant is never deduplicated for the other — nor for a user
//! of the same tenant who cannot read a room offering it. One qchatd serves
//! every case; each case gets two fresh tenants. The same property runs on
//! a cluster of two nodes
//! (`qchat_tests::Cluster`), where each new connection goes to the next
//! node: a log-in on one node and its resume, uploads and downloads on
//! another.
//!
//! The second test, [`no_user_ever_sees_a_room_they_may_not_read`] (in
//! `isolation/access.rs`), does the same for the access model inside and
//! across tenants: DMs, private rooms, invitations, bans, kicks and role
//! changes, edits, message deletions, reactions, replies and threads, and
//! the unread and mention counts, checked against a model of who may see
//! what.
//!
//! Both hold `search` to more: every search must return exactly the
//! messages of the rooms its user may read now — none from a room left,
//! never joined, kicked or banned from, none of another tenant's or DM's.

#[path = "isolation/access.rs"]
mod access;
#[path = "isolation/model.rs"]
mod model;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use qchat_tests::{Cluster, RawConn, TestServer, within};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

const PW: &str = "isolation pw";
const USERS: usize = 3;
const ROOMS: u8 = 3;
/// Cases, each a fresh pair of tenants and up to 40 steps.
const CASES: u32 = 24;
/// Cases on the cluster (the single node runs the bulk).
const CLUSTER_CASES: u32 = 8;

/// One step: which of the six users (0-2 tenant A, 3-5 tenant B) does what.
#[derive(Debug, Clone)]
struct Step {
    actor: usize,
    op: Act,
}

/// An operation; `cross` names the other tenant's room, file or upload.
#[derive(Debug, Clone)]
enum Act {
    Rooms,
    Create(u8),
    Join(u8, bool),
    Leave(u8, bool),
    Members(u8, bool),
    Send(u8, bool),
    History(u8, bool),
    Sync(u8, bool),
    Read(u8, bool),
    /// Content 0 and 1 are the same bytes in both tenants; 2 and 3 carry
    /// the tenant's marker.
    Upload(u8, u8, bool),
    FileGet(usize, bool),
    UploadStatus(usize, bool),
    /// `upload.begin` without sending anything: an upload left unfinished,
    /// for the status and stream probes to aim at.
    BeginOnly(u8, u8),
    /// An upload stream whose header names an upload of the own tenant (its
    /// bytes follow) or, as a probe, of the other one (nothing follows).
    UploadStream(usize, bool),
    /// `hello` naming the own tenant or the other one.
    Hello(bool),
    /// `resume` with the actor's token on a fresh connection.
    Resume,
    /// `logout`; the token must then be refused, and the actor logs in again.
    Logout,
    Relogin,
    /// Log in to the own tenant with a user name of the other one.
    CrossLogin,
    /// `search`: in every readable room or one named room; `cross` looks
    /// for the other tenant's marker, or names its room.
    Search(Option<u8>, bool),
}

fn act() -> impl Strategy<Value = Act> {
    let room = 0..ROOMS;
    let cross = prop::bool::weighted(0.25);
    prop_oneof![
        1 => Just(Act::Rooms),
        1 => room.clone().prop_map(Act::Create),
        1 => (room.clone(), cross).prop_map(|(r, c)| Act::Join(r, c)),
        1 => (room.clone(), cross).prop_map(|(r, c)| Act::Leave(r, c)),
        1 => (room.clone(), cross).prop_map(|(r, c)| Act::Members(r, c)),
        3 => (room.clone(), cross).prop_map(|(r, c)| Act::Send(r, c)),
        1 => (room.clone(), cross).prop_map(|(r, c)| Act::History(r, c)),
        1 => (room.clone(), cross).prop_map(|(r, c)| Act::Sync(r, c)),
        1 => (room.clone(), cross).prop_map(|(r, c)| Act::Read(r, c)),
        3 => (prop_oneof![Just(0), room.clone()], 0..4u8, cross)
            .prop_map(|(r, f, c)| Act::Upload(r, f, c)),
        2 => (0..8usize, cross).prop_map(|(f, c)| Act::FileGet(f, c)),
        1 => (0..8usize, cross).prop_map(|(u, c)| Act::UploadStatus(u, c)),
        2 => (room.clone(), 0..4u8).prop_map(|(r, f)| Act::BeginOnly(r, f)),
        3 => (0..8usize, prop::bool::weighted(0.7)).prop_map(|(u, c)| Act::UploadStream(u, c)),
        1 => cross.prop_map(Act::Hello),
        1 => Just(Act::Resume),
        1 => Just(Act::Logout),
        1 => Just(Act::Relogin),
        1 => Just(Act::CrossLogin),
        3 => (prop::option::of(room.clone()), cross).prop_map(|(r, c)| Act::Search(r, c)),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec((0..2 * USERS, act()).prop_map(|(actor, op)| Step { actor, op }), 10..40)
}

/// One tenant of a case.
struct Tenant {
    name: String,
    /// In every name, body and marked file of the tenant.
    marker: String,
}

impl Tenant {
    fn user(&self, i: usize) -> String {
        format!("{}-u{i}", self.marker)
    }
    fn room(&self, r: u8) -> String {
        format!("{}-r{r}", self.marker)
    }
    fn content(&self, k: u8) -> Vec<u8> {
        if k < 2 {
            format!("content shared by every tenant, number {k}").into_bytes()
        } else {
            format!("{} private content {k}", self.marker).repeat(50).into_bytes()
        }
    }
}

/// What a case has produced so far, per tenant (0 = A, 1 = B).
#[derive(Default)]
struct Known {
    files: [Vec<u64>; 2],
    uploads: [Vec<String>; 2],
    /// Content hashes each tenant stores.
    stored: [Vec<String>; 2],
    /// Uploads begun and never sent: id, content number, owner, room.
    open: [Vec<(String, u8, usize, u8)>; 2],
    /// Members of each room (by tenant and room number).
    members: HashMap<(usize, u8), std::collections::HashSet<usize>>,
    /// Rooms offering each stored content (by tenant and hash).
    offers: HashMap<(usize, String), std::collections::HashSet<u8>>,
    /// Operations run and frames checked, for the report.
    ops: usize,
    frames: usize,
    probes: usize,
    /// Uploads of content only the other tenant stored (must not dedupe).
    dedupe_probes: usize,
    /// Upload streams naming the other tenant's upload, and how many of
    /// those named one still unfinished.
    stream_probes: usize,
    stream_probes_open: usize,
    /// Session steps: resumes and logouts.
    resumes: usize,
    logouts: usize,
    /// Searches run, and hits checked against the model.
    searches: usize,
    hits: usize,
}

struct Case<'a> {
    /// The nodes; each new connection goes to the next one.
    nodes: &'a [TestServer],
    next_node: usize,
    tenants: [Tenant; 2],
    conns: Vec<RawConn>,
    /// Each actor's current session token.
    tokens: Vec<String>,
    known: Known,
    sent: u32,
    /// Text messages committed in each tenant's rooms.
    messages: [HashMap<u8, usize>; 2],
}

impl Case<'_> {
    fn tenant_of(actor: usize) -> usize {
        actor / USERS
    }

    /// A new connection, to the next node (every node presents the first
    /// node's certificate).
    async fn connect(&mut self) -> anyhow::Result<RawConn> {
        let node = &self.nodes[self.next_node % self.nodes.len()];
        self.next_node += 1;
        RawConn::connect(node.addr, &self.nodes[0].data_dir()).await
    }

    /// Fails when `v` carries the other tenant's marker.
    fn scan(&mut self, actor: usize, v: &Value) -> anyhow::Result<()> {
        self.scan_except(actor, v, &json!({}))
    }

    /// Like [`Self::scan`], after taking out every string the client itself
    /// sent in `fields` (a probe's reply may echo the name it was asked
    /// about; anything else of the other tenant's in it is a leak).
    fn scan_except(&mut self, actor: usize, v: &Value, fields: &Value) -> anyhow::Result<()> {
        let foreign = &self.tenants[1 - Self::tenant_of(actor)].marker;
        self.known.frames += 1;
        let mut text = v.to_string();
        for sent in fields.as_object().into_iter().flat_map(|o| o.values()) {
            if let Some(sent) = sent.as_str().filter(|s| !s.is_empty()) {
                text = text.replace(sent, "");
            }
        }
        ensure!(!text.contains(foreign.as_str()), "{} saw {foreign}: {text}", self.who(actor));
        Ok(())
    }

    fn who(&self, actor: usize) -> String {
        let t = &self.tenants[Self::tenant_of(actor)];
        format!("{}/{}", t.name, t.user(actor % USERS))
    }

    /// Scans and clears the events the actor's connection has kept aside.
    fn drain(&mut self, actor: usize) -> anyhow::Result<()> {
        let events = std::mem::take(&mut self.conns[actor].events);
        for e in &events {
            self.scan(actor, e)?;
        }
        Ok(())
    }

    /// A request whose reply must be scanned.
    async fn call(&mut self, actor: usize, op: &str, fields: Value) -> anyhow::Result<Value> {
        let r = within("isolation call", self.conns[actor].call(op, fields)).await?;
        self.scan(actor, &r)?;
        self.drain(actor)?;
        Ok(r)
    }

    /// A probe naming the other tenant's thing: it must be `not_found`, and
    /// carry nothing of the other tenant's but the names the client sent.
    async fn probe(&mut self, actor: usize, op: &str, fields: Value) -> anyhow::Result<()> {
        let r = within("isolation probe", self.conns[actor].call(op, fields.clone())).await?;
        self.scan_except(actor, &r, &fields)?;
        self.drain(actor)?;
        self.known.probes += 1;
        let code = r["err"]["code"].as_str().unwrap_or("<ok>");
        ensure!(code == "not_found", "{} {op} {fields} answered {r}", self.who(actor));
        Ok(())
    }

    /// A fresh connection logged in as `actor` (by password, or with
    /// `token`); the actor's token is updated.
    async fn login_with(&mut self, actor: usize, how: Login) -> anyhow::Result<RawConn> {
        let t = &self.tenants[Self::tenant_of(actor)];
        let (tenant, user) = (t.name.clone(), t.user(actor % USERS));
        let mut c = self.connect().await?;
        let (op, fields) = match how {
            Login::Register => {
                ("register", json!({"tenant": tenant, "user": user, "password": PW}))
            }
            Login::Password => ("login", json!({"tenant": tenant, "user": user, "password": PW})),
            Login::Resume => ("resume", json!({"token": self.tokens[actor]})),
        };
        let r = within("log-in", c.call(op, fields)).await?;
        self.scan(actor, &r)?;
        let ok = r.get("ok").with_context(|| format!("{op}: {r}"))?;
        ensure!(ok["user"] == user && ok["tenant"] == tenant, "{op}: {r}");
        self.tokens[actor] = ok["token"].as_str().context("token")?.to_owned();
        Ok(c)
    }

    async fn login(&mut self, actor: usize, register: bool) -> anyhow::Result<RawConn> {
        let how = if register { Login::Register } else { Login::Password };
        self.login_with(actor, how).await
    }

    /// Puts `fresh` in place of the actor's connection; the old one quits
    /// (if it is still open) and its kept events are scanned.
    async fn replace_conn(&mut self, actor: usize, fresh: RawConn) -> anyhow::Result<()> {
        let mut prev = std::mem::replace(&mut self.conns[actor], fresh);
        if prev.conn.close_reason().is_none() {
            let _ = within("quit", prev.call("quit", json!({}))).await;
        }
        for e in std::mem::take(&mut prev.events) {
            self.scan(actor, &e)?;
        }
        Ok(())
    }

    async fn step(&mut self, Step { actor, op }: Step) -> anyhow::Result<()> {
        let own = Self::tenant_of(actor);
        let other = 1 - own;
        let room = |r: u8, cross: bool| self.tenants[if cross { other } else { own }].room(r);
        self.known.ops += 1;
        match op {
            Act::Rooms => {
                let r = self.call(actor, "rooms", json!({})).await?;
                ensure!(r.get("ok").is_some(), "{r}");
            }
            Act::Create(n) => {
                let r = room(n, false);
                let reply = self.call(actor, "room.create", json!({"room": r})).await?;
                if reply.get("ok").is_some() {
                    self.known.members.entry((own, n)).or_default().insert(actor);
                }
            }
            Act::Send(n, cross) => {
                let name = room(n, cross);
                self.sent += 1;
                let body = format!("{} says hello #{} 🎉", self.tenants[own].marker, self.sent);
                let fields =
                    json!({"room": name, "client_msg_id": format!("m{}", self.sent), "body": body});
                if cross {
                    self.probe(actor, "send", fields).await?;
                } else {
                    let r = self.call(actor, "send", fields).await?;
                    if r.get("ok").is_some() {
                        *self.messages[own].entry(n).or_default() += 1;
                    }
                }
            }
            Act::Join(n, cross)
            | Act::Leave(n, cross)
            | Act::Members(n, cross)
            | Act::History(n, cross)
            | Act::Sync(n, cross)
            | Act::Read(n, cross) => {
                let (name, fields) = match &op {
                    Act::Join(..) => ("room.join", json!({"room": room(n, cross)})),
                    Act::Leave(..) => ("room.leave", json!({"room": room(n, cross)})),
                    Act::Members(..) => ("members", json!({"room": room(n, cross)})),
                    Act::History(..) => ("history", json!({"room": room(n, cross), "limit": 20})),
                    Act::Sync(..) => ("sync", json!({"room": room(n, cross), "after_seq": 0})),
                    _ => ("read", json!({"room": room(n, cross), "seq": 1})),
                };
                if cross {
                    self.probe(actor, name, fields).await?;
                } else {
                    let reply = self.call(actor, name, fields).await?;
                    let members = self.known.members.entry((own, n)).or_default();
                    match (&op, reply.get("ok").is_some()) {
                        (Act::Join(..), true) => drop(members.insert(actor)),
                        (Act::Leave(..), true) => {
                            members.remove(&actor);
                            // PROTOCOL.md `room.leave`: the leaver's
                            // unfinished uploads to the room are cancelled.
                            self.known.open[own].retain(|o| !(o.2 == actor && o.3 == n));
                        }
                        _ => {}
                    }
                }
            }
            Act::Search(filter, cross) => self.search(actor, filter, cross).await?,
            Act::Upload(n, k, cross) => self.upload(actor, n, room(n, cross), k, cross).await?,
            Act::FileGet(pick, cross) => {
                let t = if cross { other } else { own };
                let Some(&id) = self.known.files[t].get(pick % self.known.files[t].len().max(1))
                else {
                    return Ok(());
                };
                if cross {
                    self.probe(actor, "file.get", json!({"file_id": id})).await?;
                } else {
                    let r = self.call(actor, "file.get", json!({"file_id": id})).await?;
                    if r.get("ok").is_some() {
                        self.download(actor, id).await?;
                    }
                }
            }
            Act::UploadStatus(pick, cross) => {
                let t = if cross { other } else { own };
                let list = &self.known.uploads[t];
                let Some(id) = list.get(pick % list.len().max(1)).cloned() else {
                    return Ok(());
                };
                if cross {
                    self.probe(actor, "upload.status", json!({"upload_id": id})).await?;
                } else {
                    self.call(actor, "upload.status", json!({"upload_id": id})).await?;
                }
            }
            Act::Relogin => {
                let fresh = self.login(actor, false).await?;
                self.replace_conn(actor, fresh).await?;
            }
            Act::Resume => {
                self.known.resumes += 1;
                let fresh = self.login_with(actor, Login::Resume).await?;
                self.replace_conn(actor, fresh).await?;
            }
            Act::Logout => {
                self.known.logouts += 1;
                let token = self.tokens[actor].clone();
                let r = self.call(actor, "logout", json!({})).await?;
                ensure!(r.get("ok").is_some(), "logout: {r}");
                let mut c = self.connect().await?;
                let r = within("resume after logout", c.call("resume", json!({"token": token})))
                    .await?;
                self.scan(actor, &r)?;
                ensure!(r["err"]["code"] == "unauthorized", "a revoked token resumed: {r}");
                c.conn.close(0u32.into(), b"done");
                let fresh = self.login(actor, false).await?;
                self.replace_conn(actor, fresh).await?;
            }
            Act::Hello(cross) => {
                let tenant = self.tenants[if cross { other } else { own }].name.clone();
                let client = format!("{} isolation client", self.tenants[own].marker);
                let fields = json!({"version": 1, "client": client, "tenant": tenant});
                let r = within("hello", self.conns[actor].call("hello", fields.clone())).await?;
                self.scan_except(actor, &r, &fields)?;
                self.drain(actor)?;
                ensure!(r.get("ok").is_some(), "hello: {r}");
            }
            Act::BeginOnly(n, k) => {
                let content = self.tenants[own].content(k);
                let hash = blake3::hash(&content).to_hex().to_string();
                let name = format!("{}-open{k}.txt", self.tenants[own].marker);
                let fields = json!({"room": room(n, false), "name": name, "size": content.len(), "hash": hash});
                let r = self.call(actor, "upload.begin", fields).await?;
                if let Some(ok) = r.get("ok").filter(|ok| ok["complete"] == false) {
                    let id = ok["upload_id"].as_str().context("upload_id")?.to_owned();
                    self.known.uploads[own].push(id.clone());
                    if !self.known.open[own].iter().any(|o| o.0 == id) {
                        self.known.open[own].push((id, k, actor, n));
                    }
                } else if r.get("ok").is_some() {
                    self.known.offers.entry((own, hash)).or_default().insert(n);
                }
            }
            Act::UploadStream(pick, cross) => {
                let t = if cross { other } else { own };
                // Prefer an unfinished upload: the probe then names one that
                // exists.
                let list: Vec<String> = if self.known.open[t].is_empty() {
                    self.known.uploads[t].clone()
                } else {
                    self.known.open[t].iter().map(|o| o.0.clone()).collect()
                };
                let Some(id) = list.get(pick % list.len().max(1)).cloned() else {
                    return Ok(());
                };
                if cross {
                    self.stream_probe(actor, &id).await?;
                } else {
                    self.own_stream(actor, &id).await?;
                }
            }
            Act::CrossLogin => {
                let (tenant, user) = (self.tenants[own].name.clone(), self.tenants[other].user(0));
                let mut c = self.connect().await?;
                let r = c
                    .call("login", json!({"tenant": tenant, "user": user, "password": PW}))
                    .await?;
                self.known.probes += 1;
                ensure!(r["err"]["code"] == "unauthorized", "{tenant}/{user}: {r}");
                c.conn.close(0u32.into(), b"done");
            }
        }
        Ok(())
    }

    /// Whether the model has `actor` in room `n` of its tenant now.
    fn is_member(&self, actor: usize, n: u8) -> bool {
        let own = Self::tenant_of(actor);
        self.known.members.get(&(own, n)).is_some_and(|m| m.contains(&actor))
    }

    /// `search` checked against the model: searching for "hello" (in every
    /// text message) finds exactly the messages of the rooms the actor is
    /// a member of now, page after page; naming a room the actor cannot
    /// read is `not_found`; the other tenant's marker finds nothing, and
    /// naming its room is a probe.
    async fn search(
        &mut self,
        actor: usize,
        filter: Option<u8>,
        cross: bool,
    ) -> anyhow::Result<()> {
        let own = Self::tenant_of(actor);
        let other = 1 - own;
        self.known.searches += 1;
        if cross {
            if let Some(n) = filter {
                let fields = json!({"query": "hello", "room": self.tenants[other].room(n)});
                return self.probe(actor, "search", fields).await;
            }
            let fields = json!({"query": self.tenants[other].marker});
            let r = self.call(actor, "search", fields).await?;
            ensure!(r["ok"]["hits"] == json!([]), "{}: {r}", self.who(actor));
            return Ok(());
        }
        let readable: Vec<u8> = match filter {
            Some(n) if self.is_member(actor, n) => vec![n],
            Some(n) => {
                let fields = json!({"query": "hello", "room": self.tenants[own].room(n)});
                // `forbidden` for a room that exists (public: seen, not
                // read), `not_found` for one never created: no hits either way.
                let r = self.call(actor, "search", fields).await?;
                let code = r["err"]["code"].as_str().unwrap_or("<ok>");
                ensure!(code == "forbidden" || code == "not_found", "{}: {r}", self.who(actor));
                return Ok(());
            }
            None => (0..ROOMS).filter(|&n| self.is_member(actor, n)).collect(),
        };
        let names: Vec<String> = readable.iter().map(|&n| self.tenants[own].room(n)).collect();
        let want: usize =
            readable.iter().map(|n| self.messages[own].get(n).copied().unwrap_or(0)).sum();
        let mut got = 0usize;
        let mut cursor: Option<String> = None;
        let mut last: Option<(i64, u64)> = None;
        // Bounded: a case sends at most 40 messages.
        for _ in 0..10 {
            let mut fields = json!({"query": "HELLO", "limit": 7});
            if let Some(n) = filter {
                fields["room"] = json!(self.tenants[own].room(n));
            }
            if let Some(c) = &cursor {
                fields["cursor"] = json!(c);
            }
            let r = self.call(actor, "search", fields).await?;
            let ok = r.get("ok").with_context(|| format!("{}: search {r}", self.who(actor)))?;
            for hit in ok["hits"].as_array().context("hits")? {
                let room = hit["room"].as_str().unwrap_or_default();
                ensure!(
                    names.iter().any(|n| n == room),
                    "{} found a message of {room}, which it cannot read: {hit}",
                    self.who(actor)
                );
                let key = (hit["ts"].as_i64().unwrap_or(0), hit["seq"].as_u64().unwrap_or(0));
                ensure!(last.is_none_or(|l| key.0 <= l.0), "not newest first: {r}");
                last = Some(key);
                ensure!(hit["marks"].as_array().is_some_and(|m| !m.is_empty()), "{hit}");
                got += 1;
                self.known.hits += 1;
            }
            if ok["more"] != true {
                break;
            }
            cursor = Some(ok["cursor"].as_str().context("cursor with more")?.to_owned());
        }
        ensure!(
            got == want,
            "{} found {got} messages in {names:?}, which hold {want}",
            self.who(actor)
        );
        Ok(())
    }

    /// `upload.begin`, then the bytes on an upload stream unless the
    /// tenant already stores them; never deduplicated against the other
    /// tenant's store.
    async fn upload(
        &mut self,
        actor: usize,
        n: u8,
        room: String,
        k: u8,
        cross: bool,
    ) -> anyhow::Result<()> {
        let own = Self::tenant_of(actor);
        let content = self.tenants[own].content(k);
        let hash = blake3::hash(&content).to_hex().to_string();
        let name = format!("{}-f{k}.txt", self.tenants[own].marker);
        let fields = json!({"room": room, "name": name, "size": content.len(), "hash": hash});
        if cross {
            return self.probe(actor, "upload.begin", fields).await;
        }
        let r = self.call(actor, "upload.begin", fields).await?;
        let Some(ok) = r.get("ok") else {
            ensure!(r["err"]["code"] == "forbidden" || r["err"]["code"] == "not_found", "{r}");
            return Ok(());
        };
        let complete = ok["complete"] == true;
        // Reused only when the actor reads a room that offers it.
        let offers = self.known.offers.get(&(own, hash.clone())).cloned().unwrap_or_default();
        let held = offers
            .iter()
            .any(|r| self.known.members.get(&(own, *r)).is_some_and(|m| m.contains(&actor)));
        ensure!(
            complete == held,
            "{}: upload.begin complete={complete} but the actor {} a room that offers it{}",
            self.who(actor),
            if held { "reads" } else { "reads no" },
            if self.known.stored[1 - own].contains(&hash) {
                " (the other tenant does)"
            } else {
                ""
            }
        );
        if !held && self.known.stored[1 - own].contains(&hash) {
            self.known.dedupe_probes += 1;
        }
        let upload_id = ok["upload_id"].as_str().context("upload_id")?.to_owned();
        self.known.uploads[own].push(upload_id.clone());
        let file_id = if complete {
            ok["file"]["id"].as_u64().context("file id")?
        } else {
            let conn = &mut self.conns[actor];
            let mut st = conn.conn.open_uni().await?;
            let header = format!(r#"{{"upload_id":"{upload_id}","offset":{}}}"#, ok["offset"]);
            st.write_all(&RawConn::frame(header.as_bytes())).await?;
            let offset = usize::try_from(ok["offset"].as_u64().unwrap_or(0))?;
            st.write_all(&content[offset.min(content.len())..]).await?;
            st.finish()?;
            let done = within("upload outcome", upload_outcome(conn, &upload_id)).await?;
            self.scan(actor, &done)?;
            self.drain(actor)?;
            ensure!(done["ev"] == "upload.done", "{done}");
            done["file"]["id"].as_u64().context("file id")?
        };
        self.known.offers.entry((own, hash.clone())).or_default().insert(n);
        self.known.stored[own].push(hash);
        self.known.open[own].retain(|o| o.0 != upload_id);
        if !self.known.files[own].contains(&file_id) {
            ensure!(!self.known.files[1 - own].contains(&file_id), "file id {file_id} shared");
            self.known.files[own].push(file_id);
        }
        Ok(())
    }

    /// An upload stream from `actor` naming the other tenant's `upload_id`:
    /// it must be stopped with stream code 2 `not_found`, answered by an
    /// `upload.failed` `not_found` that says nothing of the other tenant, and
    /// the upload must be left as it was for its owner.
    async fn stream_probe(&mut self, actor: usize, upload_id: &str) -> anyhow::Result<()> {
        self.known.probes += 1;
        self.known.stream_probes += 1;
        let conn = &mut self.conns[actor];
        let mut st = conn.conn.open_uni().await?;
        let header = format!(r#"{{"upload_id":"{upload_id}","offset":0}}"#);
        // The stream may be stopped before the write completes.
        let _ = st.write_all(&RawConn::frame(header.as_bytes())).await;
        let stopped = within("stream probe stopped", st.stopped()).await;
        let code = match stopped {
            Ok(Some(code)) => code.into_inner(),
            other => bail!("{upload_id}: stream not stopped: {other:?}"),
        };
        let ev = within("stream probe outcome", async {
            loop {
                let v = conn.read().await?;
                if v["upload_id"] == upload_id && v.get("ev").is_some() {
                    return anyhow::Ok(v);
                }
                conn.events.push(v);
            }
        })
        .await?;
        self.scan(actor, &ev)?;
        self.drain(actor)?;
        ensure!(code == 2, "{}: stream code {code} for a foreign upload", self.who(actor));
        ensure!(ev["ev"] == "upload.failed" && ev["code"] == "not_found", "{ev}");
        // Still there, untouched, for its owner.
        let other = 1 - Self::tenant_of(actor);
        if let Some(&(_, _, owner, _)) = self.known.open[other].iter().find(|o| o.0 == upload_id) {
            self.known.stream_probes_open += 1;
            let r = self.call(owner, "upload.status", json!({"upload_id": upload_id})).await?;
            ensure!(r["ok"]["offset"] == 0, "after a foreign stream probe: {r}");
        }
        Ok(())
    }

    /// An upload stream from `actor` for an upload of the own tenant: the
    /// owner's unfinished upload gets its bytes; anything else (another
    /// user's, a finished one) is `not_found`. The outcome is scanned.
    async fn own_stream(&mut self, actor: usize, upload_id: &str) -> anyhow::Result<()> {
        let own = Self::tenant_of(actor);
        let (content, room) = match self.known.open[own].iter().find(|o| o.0 == upload_id) {
            Some(&(_, k, _, n)) => (self.tenants[own].content(k), Some(n)),
            None => (Vec::new(), None),
        };
        let conn = &mut self.conns[actor];
        let mut st = conn.conn.open_uni().await?;
        let header = format!(r#"{{"upload_id":"{upload_id}","offset":0}}"#);
        let _ = st.write_all(&RawConn::frame(header.as_bytes())).await;
        let _ = st.write_all(&content).await;
        let _ = st.finish();
        let ev = within("own upload stream outcome", upload_outcome(conn, upload_id)).await?;
        self.scan(actor, &ev)?;
        self.drain(actor)?;
        if ev["ev"] == "upload.done" {
            self.known.open[own].retain(|o| o.0 != upload_id);
            let hash = blake3::hash(&content).to_hex().to_string();
            if let Some(n) = room {
                self.known.offers.entry((own, hash.clone())).or_default().insert(n);
            }
            self.known.stored[own].push(hash);
            let file_id = ev["file"]["id"].as_u64().context("file id")?;
            ensure!(!self.known.files[1 - own].contains(&file_id), "file id {file_id} shared");
            if !self.known.files[own].contains(&file_id) {
                self.known.files[own].push(file_id);
            }
        } else {
            // Bytes for an upload that is not the actor's (or empty ones for
            // a finished upload): refused, never stored.
            let code = ev["code"].as_str().unwrap_or("");
            ensure!(
                ["not_found", "bad_request", "conflict"].contains(&code),
                "own upload stream: {ev}"
            );
        }
        Ok(())
    }

    /// Reads the download stream that follows a `file.get`; header and bytes
    /// are scanned too.
    async fn download(&mut self, actor: usize, id: u64) -> anyhow::Result<()> {
        let conn = self.conns[actor].conn.clone();
        let mut st = within("download stream", conn.accept_uni()).await?;
        let mut bytes = Vec::new();
        within("download bytes", (&mut st).take(1 << 20).read_to_end(&mut bytes)).await?;
        ensure!(bytes.len() > 4, "download of {id}: {} bytes", bytes.len());
        let len = usize::try_from(u32::from_be_bytes(bytes[..4].try_into()?))?;
        let header: Value = serde_json::from_slice(bytes.get(4..4 + len).context("header")?)?;
        ensure!(header["file_id"] == id, "asked for {id}, got {header}");
        self.scan(actor, &header)?;
        let foreign = self.tenants[1 - Self::tenant_of(actor)].marker.as_bytes();
        ensure!(
            !bytes.windows(foreign.len()).any(|w| w == foreign),
            "{} downloaded the other tenant's bytes",
            self.who(actor)
        );
        Ok(())
    }
}

/// How [`Case::login_with`] logs in.
#[derive(Clone, Copy)]
enum Login {
    Register,
    Password,
    Resume,
}

static CASE: AtomicU32 = AtomicU32::new(0);

/// The `upload.done` or `upload.failed` event of `upload_id`; every other
/// frame read meanwhile is kept in `conn.events` for the scan.
async fn upload_outcome(conn: &mut RawConn, upload_id: &str) -> anyhow::Result<Value> {
    loop {
        let v = conn.read().await?;
        if v["upload_id"] == upload_id && (v["ev"] == "upload.done" || v["ev"] == "upload.failed") {
            return Ok(v);
        }
        conn.events.push(v);
    }
}

async fn run_case(nodes: &[TestServer], steps: Vec<Step>) -> anyhow::Result<Known> {
    let s = &nodes[0];
    let n = CASE.fetch_add(1, Relaxed);
    let tenants = [
        Tenant { name: format!("ta{n:03}"), marker: format!("alpha{n:03}z") },
        Tenant { name: format!("tb{n:03}"), marker: format!("bravo{n:03}z") },
    ];
    for t in &tenants {
        s.tenant(&t.name, true).await?;
    }
    let mut case = Case {
        nodes,
        next_node: 0,
        tenants,
        conns: Vec::new(),
        tokens: vec![String::new(); 2 * USERS],
        known: Known::default(),
        sent: 0,
        messages: [HashMap::new(), HashMap::new()],
    };
    for actor in 0..2 * USERS {
        let c = case.login(actor, true).await?;
        case.conns.push(c);
    }
    // Every user starts in room 0 of the own tenant.
    for actor in 0..2 * USERS {
        if actor % USERS == 0 {
            let r = case.tenants[Case::tenant_of(actor)].room(0);
            case.call(actor, "room.create", json!({"room": r})).await?;
        }
    }
    for actor in 0..2 * USERS {
        let r = case.tenants[Case::tenant_of(actor)].room(0);
        case.call(actor, "room.join", json!({"room": r})).await?;
        case.known.members.entry((Case::tenant_of(actor), 0)).or_default().insert(actor);
    }
    // Something to search for from the start: one message each in room 0.
    for actor in 0..2 * USERS {
        case.step(Step { actor, op: Act::Send(0, false) }).await?;
    }
    for step in steps {
        let what = format!("{step:?}");
        case.step(step).await.with_context(|| what)?;
    }
    // Collect what is still in flight, then leave.
    tokio::time::sleep(Duration::from_millis(50)).await;
    for actor in 0..2 * USERS {
        case.call(actor, "ping", json!({})).await?;
        case.call(actor, "quit", json!({})).await?;
    }
    Ok(case.known)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tenant_ever_sees_another_tenants_data() -> anyhow::Result<()> {
    // Probes log in with wrong user names; keep the per-address limit away.
    let s = TestServer::start_with(&["--idle-timeout-secs", "10", "--login-failures", "100000"])
        .await?;
    property(std::slice::from_ref(&s), CASES)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tenant_ever_sees_another_tenants_data_on_a_cluster() -> anyhow::Result<()> {
    let c = Cluster::start(2, &["--login-failures", "100000"]).await?;
    property(&c.nodes, CLUSTER_CASES)
}

fn property(nodes: &[TestServer], cases: u32) -> anyhow::Result<()> {
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let totals = std::sync::Mutex::new(HashMap::<&str, usize>::new());
    let started = std::time::Instant::now();
    let result = runner.run(&steps(), |steps| {
        let known = tokio::task::block_in_place(|| handle.block_on(run_case(nodes, steps)))
            .map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        let mut t = totals.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        *t.entry("cases").or_default() += 1;
        *t.entry("operations").or_default() += known.ops;
        *t.entry("frames scanned").or_default() += known.frames;
        *t.entry("cross-tenant probes").or_default() += known.probes;
        *t.entry("files").or_default() += known.files[0].len() + known.files[1].len();
        *t.entry("uploads of content only the other tenant had").or_default() +=
            known.dedupe_probes;
        *t.entry("foreign upload streams").or_default() += known.stream_probes;
        *t.entry("foreign upload streams naming an unfinished upload").or_default() +=
            known.stream_probes_open;
        *t.entry("resumes").or_default() += known.resumes;
        *t.entry("logouts").or_default() += known.logouts;
        *t.entry("searches").or_default() += known.searches;
        *t.entry("search hits checked").or_default() += known.hits;
        Ok(())
    });
    let t = totals.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    println!("isolation: {t:?} in {:?}", started.elapsed());
    if let Err(e) = result {
        bail!("{e}");
    }
    Ok(())
}
