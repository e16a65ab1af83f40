//! Cluster mode on loopback: several `qchatd` nodes on one PostgreSQL
//! database, one private NATS server and one shared file directory
//! (`qchat_tests::Cluster`).
//!
//! * three nodes, users spread over them, concurrent senders in three
//!   rooms and a disconnect storm that moves clients from node to node:
//!   the database holds every acknowledged message once, gap-free, and
//!   every client's view — the library clients' and, exactly as the
//!   servers sent it, raw protocol observers' on each node — equals it;
//!   `members` shows users online on other nodes;
//! * a node killed with SIGKILL: its clients move to the other node (the
//!   address list) and nothing acknowledged is lost or doubled;
//! * NATS stopped and started again: delivery resumes by itself, every
//!   member converges on the full history, and presence converges;
//! * typing reaches the room's members on another node, not the typer's
//!   own connections there nor a non-member, rate-limited, never stored;
//! * a password change and a kick made while NATS is down reach the other
//!   node when it is back (read from the database, as nothing replays
//!   them): the revoked session ends, the kicked member hears no more of
//!   the room.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use qchat_client::{Auth, Client, ClientConfig, ClientEvent, Events, Trust};
use qchat_tests::{Cluster, RawConn, STEP, within};
use serde_json::json;
use sqlx::{Connection as _, PgConnection};
use tokio::task::JoinSet;

const PW: &str = "correct horse";

/// Seqs seen per room, in arrival order.
type View = Arc<Mutex<BTreeMap<String, Vec<u64>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

async fn setup(c: &Cluster, users: &[String], rooms: &[&str]) -> anyhow::Result<()> {
    let n = &c.nodes[0];
    n.tenant("acme", false).await?;
    for u in users {
        n.user("acme", u, PW).await?;
    }
    for r in rooms {
        n.room("acme", r).await?;
    }
    Ok(())
}

/// A library client whose address list starts at node `first`.
async fn client(c: &Cluster, user: &str, first: usize) -> anyhow::Result<(Client, Events)> {
    let mut addrs: Vec<String> = c.nodes.iter().map(|n| n.addr.to_string()).collect();
    let n = addrs.len();
    addrs.rotate_left(first % n);
    let cfg = ClientConfig::new(
        addrs.join(","),
        "acme",
        user,
        Auth::Password(PW.into()),
        Trust::Fingerprint(c.fingerprint().to_owned()),
    );
    let (client, events) = within("connect", Client::connect(cfg)).await?;
    assert_eq!(client.server_address(), c.nodes[first % c.nodes.len()].addr.to_string());
    Ok((client, events))
}

/// Drains a client's events into a view, until the events end.
fn collect(tasks: &mut JoinSet<()>, mut events: Events) -> View {
    let view = View::default();
    let v = view.clone();
    tasks.spawn(async move {
        while let Some(ev) = events.recv().await {
            if let ClientEvent::Message(m) = ev {
                lock(&v).entry(m.room.clone()).or_default().push(m.seq);
            }
        }
    });
    view
}

/// A raw protocol observer on `node` that joined `rooms`: records every
/// `message` event exactly as the server sent it.
async fn observer(
    c: &Cluster,
    tasks: &mut JoinSet<()>,
    node: usize,
    user: &str,
    rooms: &[&str],
) -> anyhow::Result<View> {
    let mut raw = RawConn::connect(c.nodes[node].addr, &c.nodes[0].data_dir()).await?;
    raw.login("acme", user, PW).await?;
    for r in rooms {
        raw.ok("room.join", json!({"room": r})).await?;
    }
    let view = View::default();
    let v = view.clone();
    tasks.spawn(async move {
        while let Ok(ev) = raw.event().await {
            if ev["ev"] == "message" {
                let room = ev["room"].as_str().unwrap_or_default().to_owned();
                lock(&v).entry(room).or_default().push(ev["seq"].as_u64().unwrap_or(0));
            }
        }
    });
    Ok(view)
}

/// The database's messages of `room`: `(seq, body, kind)` in seq order
/// (joins and leaves are `system` messages).
async fn stored(c: &Cluster, room: &str) -> anyhow::Result<Vec<(u64, String, String)>> {
    let mut pg = PgConnection::connect(&c.db.url).await?;
    let rows: Vec<(i64, String, String)> = sqlx::query_as(
        "select m.seq, m.body, m.kind from messages m join rooms r on r.id = m.room_id \
         where r.name = $1 order by m.seq",
    )
    .bind(room)
    .fetch_all(&mut pg)
    .await?;
    let _ = pg.close().await;
    Ok(rows.into_iter().map(|(s, body, kind)| (s as u64, body, kind)).collect())
}

/// Checks the database against the acknowledgements (body, unique per
/// message, → seq, per room): gap-free, each acknowledged message once at
/// its seq, and no other text message. Returns each room's last seq and
/// its first acknowledged one.
async fn check_store(
    c: &Cluster,
    acked: &HashMap<String, BTreeMap<String, u64>>,
) -> anyhow::Result<BTreeMap<String, (u64, u64)>> {
    let mut counts = BTreeMap::new();
    for (room, ids) in acked {
        let rows = stored(c, room).await?;
        let seqs: Vec<u64> = rows.iter().map(|(s, ..)| *s).collect();
        ensure!(seqs == (1..=rows.len() as u64).collect::<Vec<_>>(), "{room}: seqs not gap-free");
        let mut by_id: HashMap<&str, Vec<u64>> = HashMap::new();
        let mut texts = 0;
        for (seq, body, kind) in &rows {
            if kind == "text" {
                by_id.entry(body).or_default().push(*seq);
                texts += 1;
            }
        }
        for (id, seq) in ids {
            ensure!(
                by_id.get(id.as_str()) == Some(&vec![*seq]),
                "{room}: {id} acknowledged as {seq}, stored as {:?}",
                by_id.get(id.as_str())
            );
        }
        ensure!(texts == ids.len(), "{room}: {texts} stored, {} acknowledged", ids.len());
        let first = ids.values().min().copied().unwrap_or(0);
        counts.insert(room.clone(), (rows.len() as u64, first));
    }
    Ok(counts)
}

/// Waits (bounded) until every view holds every message of every room,
/// then checks each is exactly the room's seqs in order, once, from where
/// the viewer joined (at or before the first acknowledged message) to the
/// last.
async fn views_equal_store(
    views: &[(String, View)],
    counts: &BTreeMap<String, (u64, u64)>,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP;
    for (who, view) in views {
        loop {
            let done = counts.iter().all(|(room, (n, _))| {
                lock(view).get(room).is_some_and(|s| s.iter().any(|seq| seq >= n))
            });
            if done {
                break;
            }
            if Instant::now() > deadline {
                bail!("{who} did not converge: {:?}", summary(&lock(view)));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let v = lock(view).clone();
        for (room, (n, first_acked)) in counts {
            let got = v.get(room).cloned().unwrap_or_default();
            let from = got.first().copied().unwrap_or(0);
            ensure!(from <= *first_acked, "{who} in {room} starts at {from}: {got:?}");
            let want: Vec<u64> = (from..=*n).collect();
            ensure!(got == want, "{who} in {room}: {got:?}");
        }
    }
    Ok(())
}

fn summary(v: &BTreeMap<String, Vec<u64>>) -> Vec<(String, usize, Option<u64>)> {
    v.iter().map(|(r, s)| (r.clone(), s.len(), s.last().copied())).collect()
}

/// Polls `client`'s `members` of `room` until `user`'s online flag is
/// `online` (bounded).
async fn wait_online(client: &Client, room: &str, user: &str, online: bool) -> anyhow::Result<()> {
    let deadline = Instant::now() + STEP;
    loop {
        let members = within("members", client.members(room)).await?;
        if members.iter().any(|m| m.user == user && m.online == online) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{user} never showed online={online} to {}: {members:?}", client.user());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Sends `count` messages from `client` into `rooms` in turn, `gap` apart;
/// returns room → body → acknowledged seq.
async fn send_all(
    client: Client,
    rooms: Vec<String>,
    count: usize,
    gap: Duration,
) -> anyhow::Result<HashMap<String, BTreeMap<String, u64>>> {
    let mut acked: HashMap<String, BTreeMap<String, u64>> = HashMap::new();
    for i in 0..count {
        let room = &rooms[i % rooms.len()];
        // Unique across calls: the store is checked by body.
        static N: AtomicU64 = AtomicU64::new(0);
        let body = format!("{} #{}", client.user(), N.fetch_add(1, Ordering::Relaxed));
        let sent = tokio::time::timeout(Duration::from_secs(60), client.send(room, &body))
            .await
            .with_context(|| format!("{body}: no acknowledgement in 60 s"))??;
        acked.entry(room.clone()).or_default().insert(body, sent.seq);
        tokio::time::sleep(gap).await;
    }
    Ok(acked)
}

fn merge(
    all: &mut HashMap<String, BTreeMap<String, u64>>,
    one: HashMap<String, BTreeMap<String, u64>>,
) {
    for (room, ids) in one {
        all.entry(room).or_default().extend(ids);
    }
}

#[tokio::test]
async fn three_nodes_one_history_every_view_exact() -> anyhow::Result<()> {
    const USERS: usize = 6;
    const EACH: usize = 30;
    let rooms = ["r0", "r1", "r2"];
    let c = Cluster::start(3, &[]).await?;
    let mut names: Vec<String> = (0..USERS).map(|i| format!("u{i}")).collect();
    names.extend((0..3).map(|i| format!("watch{i}")));
    setup(&c, &names, &rooms).await?;

    let mut tasks = JoinSet::new();
    let mut views = Vec::new();
    for node in 0..3 {
        let v = observer(&c, &mut tasks, node, &format!("watch{node}"), &rooms).await?;
        views.push((format!("raw observer on node {node}"), v));
    }
    let mut clients = Vec::new();
    for i in 0..USERS {
        let (client, events) = client(&c, &format!("u{i}"), i).await?;
        for r in &rooms {
            within("join", client.join_room(r)).await?;
        }
        views.push((format!("u{i}"), collect(&mut tasks, events)));
        clients.push(client);
    }
    // Presence across nodes: u0 (node 0) sees u1 (node 1) and u2 (node 2).
    wait_online(&clients[0], "r0", "u1", true).await?;
    wait_online(&clients[0], "r0", "u2", true).await?;
    wait_online(&clients[2], "r1", "u0", true).await?;

    let started: Vec<String> = clients.iter().map(Client::server_address).collect();
    let mut senders = JoinSet::new();
    for client in &clients {
        let rooms = rooms.iter().map(|r| (*r).to_owned()).collect();
        senders.spawn(send_all(client.clone(), rooms, EACH, Duration::from_millis(5)));
    }
    // The storm: connections dropped under the senders; each reconnect
    // starts at the next node in the client's list.
    for round in 0..6 {
        tokio::time::sleep(Duration::from_millis(120)).await;
        clients[round % USERS].force_disconnect();
        clients[(round + 3) % USERS].force_disconnect();
    }
    let mut acked = HashMap::new();
    while let Some(done) = senders.join_next().await {
        merge(&mut acked, done??);
    }
    let moved = clients.iter().zip(&started).filter(|(c, s)| c.server_address() != **s).count();
    ensure!(moved >= 2, "the storm moved {moved} clients to another node");

    let counts = check_store(&c, &acked).await?;
    ensure!(acked.values().map(BTreeMap::len).sum::<usize>() == USERS * EACH);
    views_equal_store(&views, &counts).await?;

    // Going offline crosses nodes too.
    let last = clients.pop().context("a client")?;
    let gone = last.user().to_owned();
    within("quit", last.quit(None)).await?;
    wait_online(&clients[0], "r0", &gone, false).await?;
    tasks.abort_all();
    Ok(())
}

#[tokio::test]
async fn a_killed_node_loses_nothing_acknowledged() -> anyhow::Result<()> {
    const EACH: usize = 24;
    let mut c = Cluster::start(2, &[]).await?;
    let names: Vec<String> = ["k0", "k1", "k2", "k3", "watch"].map(str::to_owned).to_vec();
    setup(&c, &names, &["main"]).await?;
    let mut tasks = JoinSet::new();
    let mut views = vec![(
        "raw observer on node 1".to_owned(),
        observer(&c, &mut tasks, 1, "watch", &["main"]).await?,
    )];
    let mut clients = Vec::new();
    for i in 0..4 {
        let (client, events) = client(&c, &format!("k{i}"), i / 2).await?;
        within("join", client.join_room("main")).await?;
        views.push((format!("k{i}"), collect(&mut tasks, events)));
        clients.push(client);
    }
    let mut senders = JoinSet::new();
    for client in &clients {
        senders.spawn(send_all(
            client.clone(),
            vec!["main".into()],
            EACH,
            Duration::from_millis(60),
        ));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = c.nodes[0].kill().await?;
    ensure!(!status.success());
    let mut acked = HashMap::new();
    while let Some(done) = senders.join_next().await {
        merge(&mut acked, done??);
    }
    for client in &clients[..2] {
        ensure!(client.server_address() == c.nodes[1].addr.to_string(), "moved to node 1");
        ensure!(client.reconnects() >= 1);
    }
    let counts = check_store(&c, &acked).await?;
    ensure!(acked["main"].len() == 4 * EACH);
    views_equal_store(&views, &counts).await?;
    tasks.abort_all();
    Ok(())
}

#[tokio::test]
async fn delivery_resumes_after_nats_restarts() -> anyhow::Result<()> {
    let mut c = Cluster::start(2, &[]).await?;
    let names: Vec<String> = ["n0", "n1", "n2", "watch0", "watch1"].map(str::to_owned).to_vec();
    setup(&c, &names, &["main"]).await?;
    let mut tasks = JoinSet::new();
    let o0 = observer(&c, &mut tasks, 0, "watch0", &["main"]).await?;
    let o1 = observer(&c, &mut tasks, 1, "watch1", &["main"]).await?;
    let (a, a_events) = client(&c, "n0", 0).await?;
    let (b, b_events) = client(&c, "n1", 1).await?;
    for x in [&a, &b] {
        within("join", x.join_room("main")).await?;
    }
    let views = vec![
        ("raw observer on node 0".to_owned(), o0.clone()),
        ("raw observer on node 1".to_owned(), o1),
        ("n0".to_owned(), collect(&mut tasks, a_events)),
        ("n1".to_owned(), collect(&mut tasks, b_events)),
    ];
    let main = || vec!["main".to_owned()];
    let mut acked = HashMap::new();
    for x in [&a, &b] {
        merge(&mut acked, send_all(x.clone(), main(), 5, Duration::ZERO).await?);
    }
    views_equal_store(&views, &check_store(&c, &acked).await?).await?;

    c.nats.stop().await?;
    // Commits go on (PostgreSQL is up); node 1's messages after node 0's
    // last one can only reach node 0 through the bus.
    merge(&mut acked, send_all(a.clone(), main(), 5, Duration::ZERO).await?);
    let from_b = send_all(b.clone(), main(), 5, Duration::ZERO).await?;
    let b_first = from_b["main"].values().min().copied().context("b sent")?;
    merge(&mut acked, from_b);
    // A user arrives on node 1 while node 0 cannot hear of it.
    let (late, _late_events) = client(&c, "n2", 1).await?;
    within("join", late.join_room("main")).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = lock(&o0).get("main").and_then(|s| s.last().copied()).unwrap_or(0);
    ensure!(seen < b_first, "node 0 delivered up to {seen} without NATS, past {b_first}");

    c.nats.start_again().await?;
    views_equal_store(&views, &check_store(&c, &acked).await?).await?;
    wait_online(&a, "main", "n2", true).await?;
    // And the live path works again.
    merge(&mut acked, send_all(b.clone(), main(), 3, Duration::ZERO).await?);
    views_equal_store(&views, &check_store(&c, &acked).await?).await?;
    tasks.abort_all();
    Ok(())
}

/// With `--cid-prefix`, every packet a client sends after the handshake
/// (QUIC short header: the destination connection ID right after the first
/// byte) names the node in its first ID byte: what a balancer routes by.
#[tokio::test]
async fn connection_ids_name_the_node() -> anyhow::Result<()> {
    use std::sync::atomic::AtomicUsize;
    use tokio::net::UdpSocket;

    let s = qchat_tests::TestServer::start_with(&["--cid-prefix", "167"]).await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    s.room("acme", "lobby").await?;
    // A relay that looks at what the client sends.
    let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    back.connect(s.addr).await?;
    let (short, named) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client_addr = Arc::new(Mutex::new(None));
    let mut relay = JoinSet::new();
    {
        let (front, back, short, named, client_addr) =
            (front.clone(), back.clone(), short.clone(), named.clone(), client_addr.clone());
        relay.spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok((n, from)) = front.recv_from(&mut buf).await {
                *lock(&client_addr) = Some(from);
                if n > 9 && buf[0] & 0x80 == 0 {
                    short.fetch_add(1, Ordering::Relaxed);
                    if buf[1] == 167 {
                        named.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let _ = back.send(&buf[..n]).await;
            }
        });
    }
    {
        let (front, back, client_addr) = (front.clone(), back.clone(), client_addr.clone());
        relay.spawn(async move {
            let mut buf = vec![0u8; 65536];
            while let Ok(n) = back.recv(&mut buf).await {
                let to = *lock(&client_addr);
                if let Some(to) = to {
                    let _ = front.send_to(&buf[..n], to).await;
                }
            }
        });
    }
    let cfg = ClientConfig::new(
        front.local_addr()?.to_string(),
        "acme",
        "ann",
        Auth::Password(PW.into()),
        Trust::Fingerprint(s.fingerprint.clone()),
    );
    let (client, _events) = within("connect", Client::connect(cfg)).await?;
    within("join", client.join_room("lobby")).await?;
    for i in 0..5 {
        within("send", client.send("lobby", &format!("hello {i}"))).await?;
    }
    within("quit", client.quit(None)).await?;
    let (short, named) = (short.load(Ordering::Relaxed), named.load(Ordering::Relaxed));
    ensure!(short >= 5, "{short} short-header packets");
    ensure!(named == short, "{named} of {short} short-header packets name the node");
    relay.abort_all();
    Ok(())
}

/// Waits (bounded) for the first event `pred` accepts, returning it.
async fn event_where(
    raw: &mut RawConn,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> anyhow::Result<serde_json::Value> {
    within(what, async {
        loop {
            let ev = raw.event().await?;
            if pred(&ev) {
                return Ok(ev);
            }
        }
    })
    .await
}

/// Issue 17's membership changes cross nodes: an invitation made on one
/// node reaches the invitee on another, and a kick there removes them at
/// once — the change's message, then `room.removed`, then nothing more of
/// the room.
#[tokio::test]
async fn an_invitation_and_a_kick_reach_a_member_on_another_node() -> anyhow::Result<()> {
    let c = Cluster::start(2, &[]).await?;
    let names: Vec<String> = ["ann", "bob"].map(str::to_owned).to_vec();
    setup(&c, &names, &[]).await?;
    let cert = c.nodes[0].data_dir();
    let mut ann = RawConn::connect(c.nodes[0].addr, &cert).await?;
    ann.login("acme", "ann", PW).await?;
    let mut bob = RawConn::connect(c.nodes[1].addr, &cert).await?;
    bob.login("acme", "bob", PW).await?;

    ann.ok("room.create", json!({"room": "plans", "private": true})).await?;
    ann.ok("room.invite", json!({"room": "plans", "user": "bob"})).await?;
    let invited =
        event_where(&mut bob, "the invitation on node 1", |ev| ev["ev"] == "room").await?;
    ensure!(invited["room"]["invited"] == true, "{invited}");
    let room = invited["room"]["name"].as_str().context("room name")?.to_owned();
    bob.ok("room.join", json!({"room": room})).await?;
    let body = |b: &str| json!({"room": "plans", "client_msg_id": b, "body": b});
    ann.ok("send", body("before")).await?;
    event_where(&mut bob, "a message across nodes", |ev| ev["body"] == "before").await?;

    ann.ok("room.kick", json!({"room": "plans", "user": "bob"})).await?;
    let kicked = event_where(&mut bob, "the kick's message", |ev| ev["ev"] == "message").await?;
    ensure!(kicked["change"]["type"] == "kicked", "{kicked}");
    let removed = event_where(&mut bob, "room.removed", |ev| ev["ev"] == "room.removed").await?;
    ensure!(removed["reason"] == "kicked", "{removed}");
    ann.ok("send", body("after")).await?;
    // Ann's node has published "after" by now; give it the time to cross.
    tokio::time::sleep(Duration::from_millis(500)).await;
    bob.ok("ping", json!({})).await?;
    let late: Vec<serde_json::Value> =
        std::mem::take(&mut bob.events).into_iter().filter(|ev| ev["ev"] == "message").collect();
    ensure!(late.is_empty(), "bob got events of a room he was kicked from: {late:?}");
    Ok(())
}

/// A password change on one node ends the user's other sessions on every
/// node (close code 7, `revoked`).
#[tokio::test]
async fn a_password_change_ends_sessions_on_other_nodes() -> anyhow::Result<()> {
    let c = Cluster::start(2, &[]).await?;
    setup(&c, &["ann".to_owned()], &[]).await?;
    let cert = c.nodes[0].data_dir();
    let mut here = RawConn::connect(c.nodes[0].addr, &cert).await?;
    here.login("acme", "ann", PW).await?;
    let mut there = RawConn::connect(c.nodes[1].addr, &cert).await?;
    there.login("acme", "ann", PW).await?;
    let changed = json!({"old_password": PW, "new_password": "a new horse battery"});
    let ok = here.ok("passwd", changed).await?;
    ensure!(ok["revoked"] == 1, "{ok}");
    let closed = within("the session on node 1 ends", there.conn.closed()).await;
    let quinn::ConnectionError::ApplicationClosed(close) = &closed else {
        bail!("not closed by the server: {closed}")
    };
    ensure!(close.error_code.into_inner() == 7, "close code 7 (revoked): {close:?}");
    Ok(())
}

/// Typing crosses nodes over the bus like the room's other events: a
/// member on another node hears it, the typer's own connection there and a
/// non-member there do not, and a repeat within the interval is dropped.
/// Nothing is stored.
#[tokio::test]
async fn typing_reaches_members_on_another_node() -> anyhow::Result<()> {
    let c = Cluster::start(2, &[]).await?;
    let names: Vec<String> = ["ann", "bob", "carol"].map(str::to_owned).to_vec();
    setup(&c, &names, &["general"]).await?;
    let cert = c.nodes[0].data_dir();
    let mut ann = RawConn::connect(c.nodes[0].addr, &cert).await?;
    ann.login("acme", "ann", PW).await?;
    let mut bob = RawConn::connect(c.nodes[1].addr, &cert).await?;
    bob.login("acme", "bob", PW).await?;
    let mut ann_there = RawConn::connect(c.nodes[1].addr, &cert).await?;
    ann_there.login("acme", "ann", PW).await?;
    let mut carol = RawConn::connect(c.nodes[1].addr, &cert).await?;
    carol.login("acme", "carol", PW).await?;
    ann.ok("room.join", json!({"room": "general"})).await?;
    bob.ok("room.join", json!({"room": "general"})).await?;
    // Bob's join has reached node 0 once ann hears it: both nodes know
    // both members from here on.
    event_where(&mut ann, "bob's join on node 0", |ev| ev["ev"] == "member" && ev["user"] == "bob")
        .await?;

    ann.ok("typing", json!({"room": "general"})).await?;
    let ev = event_where(&mut bob, "typing on node 1", |ev| ev["ev"] == "typing").await?;
    ensure!(ev["user"] == "ann" && ev["room"] == "general", "{ev}");
    ensure!(ev["room_id"].as_str().is_some_and(|id| id.starts_with('+')), "{ev}");
    // Again at once: dropped by the rate limit, on both nodes.
    ann.ok("typing", json!({"room": "general"})).await?;
    bob.ok("typing", json!({"room": "general"})).await?;
    event_where(&mut ann, "bob's typing on node 0", |ev| ev["ev"] == "typing").await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (who, c) in
        [("bob", &mut bob), ("ann's other connection", &mut ann_there), ("carol", &mut carol)]
    {
        c.ok("ping", json!({})).await?;
        let heard: Vec<serde_json::Value> = std::mem::take(&mut c.events)
            .into_iter()
            .filter(|ev| ev["ev"] == "typing" && ev["user"] == "ann")
            .collect();
        ensure!(heard.is_empty(), "{who} heard ann typing (again): {heard:?}");
    }
    let h = ann.ok("history", json!({"room": "general"})).await?;
    let kinds: Vec<&str> = h["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["change"]["type"].as_str())
        .collect();
    ensure!(kinds == ["joined", "joined"], "typing stored nothing: {h}");
    Ok(())
}

/// What happens on one node while NATS is down is read back from the
/// database by the other once NATS is back: a session revoked there ends
/// here (close code 7), and a member kicked there stops hearing the room
/// here (`room.removed`, then none of its messages).
#[tokio::test]
async fn a_revocation_and_a_kick_during_a_nats_outage_arrive_after_it() -> anyhow::Result<()> {
    let mut c = Cluster::start(2, &[]).await?;
    setup(&c, &["ann".to_owned(), "bob".to_owned()], &[]).await?;
    let cert = c.nodes[0].data_dir();
    let mut here = RawConn::connect(c.nodes[0].addr, &cert).await?;
    here.login("acme", "ann", PW).await?;
    let mut there = RawConn::connect(c.nodes[1].addr, &cert).await?;
    there.login("acme", "ann", PW).await?;
    let mut bob = RawConn::connect(c.nodes[1].addr, &cert).await?;
    bob.login("acme", "bob", PW).await?;
    here.ok("room.create", json!({"room": "plans"})).await?;
    bob.ok("room.join", json!({"room": "plans"})).await?;
    let body = |b: &str| json!({"room": "plans", "client_msg_id": b, "body": b});
    here.ok("send", body("before")).await?;
    event_where(&mut bob, "a message across nodes", |ev| ev["body"] == "before").await?;

    c.nats.stop().await?;
    // Until a node notices, its client queues what it publishes and sends
    // it after reconnecting; past this, it is dropped.
    within("both nodes see NATS gone", async {
        while !c.nodes.iter().all(|n| n.log_text().contains("lost NATS")) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::Ok(())
    })
    .await?;
    here.ok("room.kick", json!({"room": "plans", "user": "bob"})).await?;
    here.ok("send", body("while down")).await?;
    let changed = json!({"old_password": PW, "new_password": "a new horse battery"});
    let ok = here.ok("passwd", changed).await?;
    ensure!(ok["revoked"] == 1, "{ok}");
    // Node 1 cannot know yet: the session there is still up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ensure!(there.conn.close_reason().is_none(), "ended before NATS was back");

    c.nats.start_again().await?;
    let closed = within("the session on node 1 ends", there.conn.closed()).await;
    let quinn::ConnectionError::ApplicationClosed(close) = &closed else {
        bail!("not closed by the server: {closed}")
    };
    ensure!(close.error_code.into_inner() == 7, "close code 7 (revoked): {close:?}");
    // Everything bob hears up to and after room.removed, kept to check.
    let mut heard = Vec::new();
    within("room.removed on node 1", async {
        loop {
            let ev = bob.event().await?;
            let done = ev["ev"] == "room.removed";
            heard.push(ev);
            if done {
                return anyhow::Ok(());
            }
        }
    })
    .await?;
    ensure!(heard.last().is_some_and(|ev| ev["room"] == "plans"), "{heard:?}");
    here.ok("send", body("after")).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    bob.ok("ping", json!({})).await?;
    heard.append(&mut bob.events);
    let late: Vec<&serde_json::Value> = heard
        .iter()
        .filter(|ev| ev["ev"] == "message")
        .filter(|ev| ev["body"] == "while down" || ev["body"] == "after")
        .collect();
    ensure!(late.is_empty(), "bob heard the room after his kick: {late:?}");
    Ok(())
}
