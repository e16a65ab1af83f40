//! Disconnect storm: while 20 library clients send steadily into one room and
//! five `qchat tail` processes follow it, 200 connection losses are forced —
//! dropped connections (`Client::force_disconnect`, which sends
//! CONNECTION_CLOSE), silently lost ones (`Client::abandon_connection`: no
//! close, the server finds out at its idle timeout), UDP rebinds that QUIC
//! must migrate without a reconnect (`Client::rebind`), and CLI processes
//! frozen with SIGSTOP past the server's idle timeout. Afterwards every
//! acknowledged message is in the room exactly once, in seq order, in every
//! member's view (events and history), and every outbox is empty.
//!
//! The storm runs twice: straight over loopback, and through an impairment
//! relay: 5% loss in each direction (from when every member is in) and 25 ms
//! delay each way, so 50 ms more round trip, as `netem delay 50ms loss 5%` on
//! one side of a link would add (`tc netem` itself is missing on the machines
//! this runs on; see `docs/RELIABILITY.md`).
//! Also here: the server notices a client's CONNECTION_CLOSE at once, even
//! when it arrives in the middle of a fast upload.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use qchat_client::{
    Auth, Client, ClientConfig, ClientEvent, ConnState, Events, Message, MessageKind, Trust,
};
use qchat_tests::{Rng, TestServer, bin_path, within};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::UdpSocket;
use tokio::process::Child;
use tokio::sync::{Mutex, mpsc};
use tokio::task::JoinSet;

const PW: &str = "correct horse";
/// The server's idle timeout in the storm: short, so frozen clients time out
/// within the test's budget.
const IDLE_SECS: u64 = 2;
/// Library clients that send.
const SENDERS: usize = 20;
/// `qchat tail` processes that get frozen.
const TAILS: usize = 5;
/// Freezes per tail process.
const PAUSES_PER_TAIL: usize = 6;
/// Losses in total: freezes plus library-client disruptions.
const LOSSES: usize = 200;
/// Gap between two messages of one sender.
const SEND_EVERY: Duration = Duration::from_millis(200);
/// Datagrams the relay drops during its storm, in percent each way.
const RELAY_LOSS: u64 = 5;

/// The two storms would fight over two cores; one at a time.
static ONE_STORM: Mutex<()> = Mutex::const_new(());

fn config(server: SocketAddr, fingerprint: &str, user: &str) -> ClientConfig {
    ClientConfig::new(
        server.to_string(),
        "acme",
        user,
        Auth::Password(PW.into()),
        Trust::Fingerprint(fingerprint.to_owned()),
    )
}

/// A generator seeded per run and printed, so a failing schedule can be
/// replayed with `QCHAT_STORM_SEED`.
fn seeded_rng() -> (Rng, u64) {
    let seed = std::env::var("QCHAT_STORM_SEED").ok().and_then(|s| s.parse().ok());
    let seed = seed.unwrap_or_else(|| {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        t.map(|d| d.as_nanos() as u64).unwrap_or(7) | 1
    });
    (Rng::new(seed), seed)
}

// ---------------------------------------------------------------------------
// Impairment relay
// ---------------------------------------------------------------------------

/// A UDP relay on loopback that drops a percentage of the datagrams (none
/// until [`Relay::set_loss`]) and delays the rest by `delay`, in each
/// direction — what `tc netem` would do.
/// It maps each client address to an upstream socket of its own, like a NAT,
/// so a client that rebinds reaches the server from a new address too and
/// QUIC really migrates.
struct Relay {
    addr: SocketAddr,
    tasks: JoinSet<()>,
    dropped: Arc<AtomicU64>,
    passed: Arc<AtomicU64>,
    loss_percent: Arc<AtomicU64>,
}

/// One direction's delay line: datagrams leave in order after `delay`.
fn delay_line(
    tasks: &mut JoinSet<()>,
    socket: Arc<UdpSocket>,
    delay: Duration,
) -> mpsc::UnboundedSender<(tokio::time::Instant, Vec<u8>, Option<SocketAddr>)> {
    let (tx, mut rx) =
        mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>, Option<SocketAddr>)>();
    tasks.spawn(async move {
        while let Some((at, bytes, to)) = rx.recv().await {
            tokio::time::sleep_until(at + delay).await;
            let _ = match to {
                Some(to) => socket.send_to(&bytes, to).await,
                None => socket.send(&bytes).await,
            };
        }
    });
    tx
}

impl Relay {
    async fn start(server: SocketAddr, delay: Duration) -> anyhow::Result<Self> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let addr = front.local_addr()?;
        let mut tasks = JoinSet::new();
        let dropped = Arc::new(AtomicU64::new(0));
        let passed = Arc::new(AtomicU64::new(0));
        let loss_percent = Arc::new(AtomicU64::new(0));
        let (d, p, loss) = (dropped.clone(), passed.clone(), loss_percent.clone());
        tasks.spawn(async move {
            // Everything below lives in this task's own set, aborted with it.
            let mut inner = JoinSet::new();
            let to_clients = delay_line(&mut inner, front.clone(), delay);
            let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
            let mut uplinks = HashMap::new();
            let mut buf = vec![0u8; 65_536];
            loop {
                let Ok((n, from)) = front.recv_from(&mut buf).await else { return };
                if let std::collections::hash_map::Entry::Vacant(slot) = uplinks.entry(from) {
                    // A new client address gets its own upstream socket.
                    let Ok(sock) = UdpSocket::bind("127.0.0.1:0").await else { return };
                    if sock.connect(server).await.is_err() {
                        return;
                    }
                    let sock = Arc::new(sock);
                    slot.insert(delay_line(&mut inner, sock.clone(), delay));
                    let (back, d, p) = (to_clients.clone(), d.clone(), p.clone());
                    let loss = loss.clone();
                    let mut down_rng = Rng::new(rng.next_u64() | 1);
                    inner.spawn(async move {
                        let mut buf = vec![0u8; 65_536];
                        while let Ok(n) = sock.recv(&mut buf).await {
                            if down_rng.chance(loss.load(Ordering::Relaxed)) {
                                d.fetch_add(1, Ordering::Relaxed);
                                continue;
                            }
                            p.fetch_add(1, Ordering::Relaxed);
                            let now = tokio::time::Instant::now();
                            let _ = back.send((now, buf[..n].to_vec(), Some(from)));
                        }
                    });
                }
                if rng.chance(loss.load(Ordering::Relaxed)) {
                    d.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                p.fetch_add(1, Ordering::Relaxed);
                if let Some(up) = uplinks.get(&from) {
                    let _ = up.send((tokio::time::Instant::now(), buf[..n].to_vec(), None));
                }
            }
        });
        Ok(Self { addr, tasks, dropped, passed, loss_percent })
    }

    /// From now on drops `percent` of the datagrams each way.
    fn set_loss(&self, percent: u64) {
        self.loss_percent.store(percent, Ordering::Relaxed);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.tasks.abort_all();
    }
}

// ---------------------------------------------------------------------------
// Members: library clients and tail processes
// ---------------------------------------------------------------------------

/// What one library client saw.
#[derive(Default)]
struct View {
    messages: Vec<Message>,
    /// Presence changes seen, per user: (went offline, came online).
    presence: HashMap<String, (u64, u64)>,
    /// The first thing that went wrong (checked at the end).
    problem: Option<String>,
    /// Why each lost connection dropped (the first reconnect attempt's
    /// reason), in order.
    drops: Vec<String>,
}

/// Locks `m`, poisoned or not (a panicking task fails the test anyway).
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Reads a client's events into its view until the stream ends, asserting
/// seqs arrive once and in order.
async fn follow(mut events: Events, view: Arc<std::sync::Mutex<View>>) {
    while let Some(ev) = events.recv().await {
        let mut v = lock(&view);
        match ev {
            ClientEvent::Message(m) => {
                // The first is the member's own "joined" (or a later one):
                // from there on every seq, once, in order.
                let last = v.messages.last().map_or(m.seq.saturating_sub(1), |l| l.seq);
                if m.seq != last + 1 && v.problem.is_none() {
                    v.problem =
                        Some(format!("seq {} after {last}: gap, repeat or disorder", m.seq));
                }
                v.messages.push(m);
            }
            ClientEvent::Presence(p) => {
                let e = v.presence.entry(p.user).or_default();
                if p.online {
                    e.1 += 1;
                } else {
                    e.0 += 1;
                }
            }
            ClientEvent::State(ConnState::Closed { reason }) if v.problem.is_none() => {
                v.problem = Some(format!("closed: {reason}"));
            }
            ClientEvent::State(ConnState::Reconnecting { attempt: 1, last_error }) => {
                v.drops.push(last_error);
            }
            _ => {}
        }
    }
}

/// A `qchat tail --json` process and the messages it printed.
struct Tail {
    user: String,
    child: Child,
    lines: Arc<std::sync::Mutex<Vec<Message>>>,
    reconnects: Arc<AtomicU64>,
    /// The last lines it logged, and whether its stderr has closed (the
    /// process exited): so a tail that gives up says why.
    log: Arc<std::sync::Mutex<VecDeque<String>>>,
    exited: Arc<AtomicBool>,
}

impl Tail {
    async fn spawn(
        server: SocketAddr,
        fingerprint: &str,
        user: &str,
        home: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let mut child = tokio::process::Command::new(bin_path("qchat"))
            .args(["--server", &server.to_string(), "--tenant", "acme", "--user", user])
            .args(["--fingerprint", fingerprint, "tail", "general", "--json"])
            .env("QCHAT_PASSWORD", PW)
            .env("HOME", home)
            .env("RUST_LOG", "qchat_client=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()?;
        let lines = Arc::new(std::sync::Mutex::new(Vec::new()));
        let reconnects = Arc::new(AtomicU64::new(0));
        let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
            anyhow::bail!("no pipes");
        };
        let l = lines.clone();
        tokio::spawn(async move {
            let mut out = BufReader::new(out).lines();
            while let Ok(Some(line)) = out.next_line().await {
                let m: Message = serde_json::from_str(&line).expect("tail prints JSON messages");
                lock(&l).push(m);
            }
        });
        let log: Arc<std::sync::Mutex<VecDeque<String>>> = Arc::default();
        let exited = Arc::new(AtomicBool::new(false));
        let (r, g, x) = (reconnects.clone(), log.clone(), exited.clone());
        tokio::spawn(async move {
            let mut err = BufReader::new(err).lines();
            while let Ok(Some(line)) = err.next_line().await {
                if line.contains("reconnected") {
                    r.fetch_add(1, Ordering::Relaxed);
                }
                let mut g = lock(&g);
                if g.len() == 5 {
                    g.pop_front();
                }
                g.push_back(line);
            }
            x.store(true, Ordering::Relaxed);
        });
        Ok(Self { user: user.to_owned(), child, lines, reconnects, log, exited })
    }

    /// Why the process exited, if it has: its last log lines.
    fn exit_reason(&self) -> Option<String> {
        self.exited
            .load(Ordering::Relaxed)
            .then(|| lock(&self.log).iter().cloned().collect::<Vec<_>>().join(" | "))
    }

    fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let pid = self.child.id().ok_or_else(|| anyhow::anyhow!("tail exited"))?;
        let status = std::process::Command::new("kill").arg(sig).arg(pid.to_string()).status()?;
        anyhow::ensure!(status.success(), "kill {sig} {pid}");
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// The storm
// ---------------------------------------------------------------------------

#[derive(Default)]
struct Tally {
    forced: AtomicU64,
    abandoned: AtomicU64,
    rebinds: AtomicU64,
    /// Rebinds after which the connection was lost and the client
    /// reconnected (allowed, and bounded, only through the lossy relay).
    migrations_lost: AtomicU64,
    /// Why those connections dropped, as the clients reported it.
    migration_drops: std::sync::Mutex<Vec<String>>,
    pauses: AtomicU64,
}

/// Disrupts one library client `count` times: a rebind (a request goes
/// through on the new socket; with `strict`, over loopback, no reconnect
/// may happen: the connection migrates), or else a lost connection — silent
/// (no close) for a `silent` client, a forced disconnect for the others —
/// and waits for the reconnect. One kind per client: a silently lost session
/// lingers on the server until the idle timeout, so that user would not be
/// seen going offline at a forced disconnect meanwhile.
///
/// Through the lossy relay a migration may end in a reconnect (seen once,
/// 2026-12-02; most likely it lost the race with the test's 2 s idle
/// timeout, path-validation packets being dropped like any others): that is
/// counted as `migrations_lost`, bounded by the caller, and never allowed
/// more than once per rebind.
async fn disrupt(
    client: Client,
    view: Arc<std::sync::Mutex<View>>,
    count: usize,
    rebind_percent: u64,
    (silent, strict): (bool, bool),
    seed: u64,
    tally: Arc<Tally>,
) -> anyhow::Result<()> {
    let mut rng = Rng::new(seed | 1);
    for _ in 0..count {
        tokio::time::sleep(Duration::from_millis(150 + rng.below(350))).await;
        let before = client.reconnects();
        if rng.chance(rebind_percent) {
            let old = client.local_addr();
            client.rebind()?;
            assert_ne!(client.local_addr(), old, "a new local port");
            within("a request over the migrated path", client.ping()).await?;
            let reconnected = client.reconnects() - before;
            if strict || reconnected > 1 {
                assert_eq!(reconnected, 0, "a rebind migrates; it never reconnects");
            }
            if reconnected == 0 {
                tally.rebinds.fetch_add(1, Ordering::Relaxed);
            } else {
                tally.migrations_lost.fetch_add(1, Ordering::Relaxed);
                // The state event may trail the reconnect a little.
                tokio::time::sleep(Duration::from_millis(50)).await;
                let why = lock(&view).drops.last().cloned().unwrap_or_else(|| "unknown".into());
                lock(&tally.migration_drops).push(format!("{}: {why}", client.user()));
            }
        } else {
            if silent {
                client.abandon_connection()?;
            } else {
                client.force_disconnect();
            }
            within("the reconnect after a lost connection", async {
                while client.reconnects() == before {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
            .await;
            let kind = if silent { &tally.abandoned } else { &tally.forced };
            kind.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Freezes a tail process past the idle timeout `times` times.
async fn freeze(tail: Arc<Tail>, times: usize, tally: Arc<Tally>) -> anyhow::Result<()> {
    for i in 0..times {
        tokio::time::sleep(Duration::from_millis(300 + 100 * i as u64)).await;
        let before = tail.reconnects.load(Ordering::Relaxed);
        tail.signal("-STOP")?;
        tokio::time::sleep(Duration::from_millis(IDLE_SECS * 1000 + 1000)).await;
        tail.signal("-CONT")?;
        within("the tail reconnects after a freeze", async {
            while tail.reconnects.load(Ordering::Relaxed) == before {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        tally.pauses.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Runs the storm against `s`, with clients connecting to it directly or
/// through `relay`. The relay starts losing [`RELAY_LOSS`] once every member
/// is in, when the storm starts: joining is not what is under test, and a
/// handshake that the loss (and a loaded machine) stalls past the storm
/// server's 2 s idle timeout is dropped by the server, which the client only
/// learns at its 10 s handshake deadline (seen once, under load).
///
/// Without a relay no datagram is lost on the way, so every forced
/// disconnect's CONNECTION_CLOSE must reach the server (the user goes
/// offline before the reconnect brings them back).
async fn storm(s: &TestServer, relay: Option<&Relay>, label: &str) -> anyhow::Result<()> {
    let (via, lossless) = relay.map_or((s.addr, true), |r| (r.addr, false));
    let started = Instant::now();
    let (mut rng, seed) = seeded_rng();
    println!("[{label}] seed {seed} (QCHAT_STORM_SEED={seed} replays the schedule)");
    let fp = s.fingerprint.as_str();

    // The watcher is never disrupted: it sees every presence change.
    let (watcher, watcher_events) =
        within("watcher", Client::connect(config(via, fp, "w"))).await?;
    watcher.join_room("general").await?;
    let watcher_view = Arc::new(std::sync::Mutex::new(View::default()));
    let mut followers = JoinSet::new();
    followers.spawn(follow(watcher_events, watcher_view.clone()));

    let home = tempfile::tempdir()?;
    let mut tails = Vec::new();
    for i in 0..TAILS {
        tails.push(Arc::new(Tail::spawn(via, fp, &format!("t{i}"), home.path()).await?));
    }
    within("tails joined and online", async {
        loop {
            if let Some((t, why)) = tails.iter().find_map(|t| t.exit_reason().map(|w| (t, w))) {
                anyhow::bail!("{} exited before it was online: {why}", t.user);
            }
            let members = watcher.members("general").await?;
            let online = members.iter().filter(|m| m.user.starts_with('t') && m.online).count();
            if online == TAILS {
                return Ok::<_, anyhow::Error>(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await?;

    let mut clients = Vec::new();
    let mut views = Vec::new();
    for i in 0..SENDERS {
        let user = format!("u{i:02}");
        let (c, ev) = within("connect", Client::connect(config(via, fp, &user))).await?;
        c.join_room("general").await?;
        let view = Arc::new(std::sync::Mutex::new(View::default()));
        followers.spawn(follow(ev, view.clone()));
        clients.push(c);
        views.push(view);
    }

    if let Some(relay) = relay {
        relay.set_loss(RELAY_LOSS);
    }

    // Steady senders: a message every SEND_EVERY, each on its own task so
    // the outbox fills while a client is disconnected.
    let sending = Arc::new(AtomicBool::new(true));
    let mut senders = JoinSet::new();
    for c in &clients {
        let (c, sending) = (c.clone(), sending.clone());
        senders.spawn(async move {
            let mut sends = JoinSet::new();
            let mut n = 0u64;
            while sending.load(Ordering::Relaxed) {
                let body = format!("{} #{n}", c.user());
                let c = c.clone();
                sends.spawn(async move { c.send("general", &body).await.map(|ok| (ok, body)) });
                n += 1;
                tokio::time::sleep(SEND_EVERY).await;
            }
            let mut acked = Vec::new();
            while let Some(r) = sends.join_next().await {
                acked.push(r.map_err(anyhow::Error::from)?.map_err(anyhow::Error::from)?);
            }
            Ok::<_, anyhow::Error>(acked)
        });
    }

    // The losses.
    let tally = Arc::new(Tally::default());
    let pauses = TAILS * PAUSES_PER_TAIL;
    let (per_client, extra) = ((LOSSES - pauses) / SENDERS, (LOSSES - pauses) % SENDERS);
    let mut storm = JoinSet::new();
    for (i, c) in clients.iter().enumerate() {
        let count = per_client + usize::from(i < extra);
        // Every other client loses its connections silently.
        let silent = i % 2 == 1;
        let kinds = (silent, lossless);
        let (view, seed) = (views[i].clone(), rng.next_u64());
        storm.spawn(disrupt(c.clone(), view, count, 40, kinds, seed, tally.clone()));
    }
    for t in &tails {
        storm.spawn(freeze(t.clone(), PAUSES_PER_TAIL, tally.clone()));
    }
    while let Some(r) = storm.join_next().await {
        r??;
    }
    let storm_time = started.elapsed();
    sending.store(false, Ordering::Relaxed);
    let mut acked = Vec::new();
    while let Some(r) = within("every send acknowledged", senders.join_next()).await {
        acked.extend(r??);
    }

    // Every outbox is empty.
    for c in &clients {
        assert_eq!(c.pending_sends(), 0, "{} still has unacknowledged sends", c.user());
    }

    // History holds every acknowledged message exactly once, gap-free.
    let mut history = Vec::new();
    loop {
        let after = history.last().map_or(0, |m: &Message| m.seq);
        let page = within("sync", watcher.sync("general", after, Some(500))).await?;
        history.extend(page.messages);
        if !page.more {
            break;
        }
    }
    let seqs: Vec<u64> = history.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, (1..=history.len() as u64).collect::<Vec<_>>(), "history is gap-free");
    // The members' own messages; the rest are the system messages of the
    // joins, which members see from their own join on.
    let history: Vec<Message> =
        history.into_iter().filter(|m| m.kind != MessageKind::System).collect();
    let by_body: BTreeMap<&str, &Message> = history.iter().map(|m| (m.body.as_str(), m)).collect();
    assert_eq!(by_body.len(), history.len(), "no message stored twice");
    assert_eq!(acked.len(), history.len(), "history holds exactly the acknowledged messages");
    for (ok, body) in &acked {
        let m = by_body.get(body.as_str()).unwrap_or_else(|| panic!("{body} acked, not stored"));
        assert_eq!(m.seq, ok.seq, "{body}: acked seq and stored seq agree");
    }
    // A duplicate answer is fine (the resend of a message whose reply was
    // lost), but it must name the original seq — checked above.
    let duplicates = acked.iter().filter(|(ok, _)| ok.duplicate).count();

    // Every member's events hold the same, once and in order.
    let total = history.len();
    let users = |messages: &[Message]| -> Vec<Message> {
        messages.iter().filter(|m| m.kind != MessageKind::System).cloned().collect()
    };
    let wanted = |v: &std::sync::Mutex<View>| users(&lock(v).messages).len() >= total;
    within("every library client caught up", async {
        while !views.iter().chain([&watcher_view]).all(|v| wanted(v)) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let key = |m: &Message| (m.seq, m.sender.clone(), m.body.clone());
    let truth: Vec<_> = history.iter().map(key).collect();
    for v in views.iter().chain([&watcher_view]) {
        let v = lock(v);
        assert_eq!(v.problem, None, "a member's events");
        assert_eq!(
            users(&v.messages).iter().map(key).collect::<Vec<_>>(),
            truth,
            "a member's view"
        );
    }
    within("every tail caught up", async {
        while !tails
            .iter()
            .all(|t| t.lines.lock().map(|l| users(&l).len() >= total).unwrap_or(false))
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    for t in &tails {
        let lines = lock(&t.lines);
        let printed: Vec<_> = users(&lines).iter().map(key).collect();
        assert_eq!(printed, truth, "{}'s printed view", t.user);
    }

    // The server saw each freeze as a timeout (the user went offline), and
    // each forced disconnect at once: on loopback the user goes offline
    // before the reconnect (200 ms backoff) brings them back.
    let (tail_offline, client_offline) = {
        let watched = lock(&watcher_view);
        let offline = |prefix: char| -> u64 {
            watched.presence.iter().filter(|(u, _)| u.starts_with(prefix)).map(|(_, p)| p.0).sum()
        };
        (offline('t'), offline('u'))
    };
    let forced = tally.forced.load(Ordering::Relaxed);
    let abandoned = tally.abandoned.load(Ordering::Relaxed);
    let rebinds = tally.rebinds.load(Ordering::Relaxed);
    let migrations_lost = tally.migrations_lost.load(Ordering::Relaxed);
    let paused = tally.pauses.load(Ordering::Relaxed);
    let reconnects: u64 = clients.iter().map(Client::reconnects).sum();
    let tail_reconnects: u64 = tails.iter().map(|t| t.reconnects.load(Ordering::Relaxed)).sum();
    println!(
        "[{label}] {} losses in {:.1}s: {forced} forced disconnects, {abandoned} silent losses, \
         {rebinds} rebinds (migrated, 0 reconnects), {migrations_lost} rebinds that reconnected, \
         {paused} SIGSTOP freezes past the {IDLE_SECS}s idle timeout",
        forced + abandoned + rebinds + migrations_lost + paused,
        storm_time.as_secs_f64()
    );
    println!(
        "[{label}] {} messages acknowledged ({duplicates} resends answered as duplicates), \
         all in history once and in every one of {} views; reconnects: {reconnects} library, \
         {tail_reconnects} tail; offline seen: {client_offline} library, {tail_offline} tail",
        acked.len(),
        SENDERS + 1 + TAILS
    );
    assert_eq!(forced + abandoned + rebinds + migrations_lost + paused, LOSSES as u64);
    assert!(forced > 0 && abandoned > 0, "both kinds of loss happened");
    assert_eq!(
        reconnects,
        forced + abandoned + migrations_lost,
        "only lost connections reconnect library clients"
    );
    // Through the relay, a migration may lose to the idle timeout now and
    // then, not as a rule.
    let drops = lock(&tally.migration_drops).join("; ");
    if migrations_lost > 0 {
        println!("[{label}] rebinds that reconnected dropped because: {drops}");
    }
    assert!(
        migrations_lost * 10 <= rebinds + migrations_lost,
        "{migrations_lost} of {} rebinds ended in a reconnect ({drops})",
        rebinds + migrations_lost
    );
    assert!(tail_offline >= paused, "each freeze outlasted the server's idle timeout");
    if lossless {
        assert!(client_offline >= forced, "the server noticed every forced close at once");
    }
    // A silent loss sends nothing, so the server can only time it out (as it
    // does each frozen tail): wait for that many idle timeouts in its log.
    // Over loopback nothing else times out; through the relay a forced close
    // may be lost too, so there it is a lower bound.
    let want = abandoned + paused;
    let deadline = Instant::now() + qchat_tests::STEP;
    let timeouts = loop {
        let n = s.log_text().matches("connection lost: timed out").count() as u64;
        if n >= want || Instant::now() >= deadline {
            break n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        timeouts >= want,
        "[{label}] the server timed out {timeouts} connections, not every silent loss and \
         freeze ({abandoned} + {paused}); how its connections ended: {}",
        end_causes(&s.log_text())
    );
    println!(
        "[{label}] server idle timeouts: {timeouts} (silent losses {abandoned} + freezes {paused})"
    );
    if lossless {
        assert_eq!(timeouts, abandoned + paused, "only silent losses and freezes time out");
    }

    for c in clients.iter().chain([&watcher]) {
        c.quit(None).await?;
    }
    followers.shutdown().await;
    Ok(())
}

/// How the server's sessions ended, from its log (`cause=` of its
/// control-stream lines), counted: for a failure message.
fn end_causes(log: &str) -> String {
    let mut causes: BTreeMap<&str, usize> = BTreeMap::new();
    for line in log.lines().filter(|l| l.contains("control stream")) {
        let cause = line.split_once("cause=").map_or("?", |(_, c)| c.trim());
        *causes.entry(cause).or_default() += 1;
    }
    format!("{causes:?}")
}

async fn storm_server() -> anyhow::Result<TestServer> {
    let idle = IDLE_SECS.to_string();
    let s =
        TestServer::start_with(&["--idle-timeout-secs", &idle, "--max-connections-per-ip", "500"])
            .await?;
    s.tenant("acme", true).await?;
    s.room("acme", "general").await?;
    let mut users = JoinSet::new();
    let names = std::iter::once("w".to_owned())
        .chain((0..SENDERS).map(|i| format!("u{i:02}")))
        .chain((0..TAILS).map(|i| format!("t{i}")));
    let s = Arc::new(s);
    for name in names {
        let s = s.clone();
        users.spawn(async move { s.user("acme", &name, PW).await });
    }
    while let Some(r) = users.join_next().await {
        r??;
    }
    Arc::into_inner(s).ok_or_else(|| anyhow::anyhow!("server still shared"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_over_loopback() -> anyhow::Result<()> {
    let _one = ONE_STORM.lock().await;
    let s = storm_server().await?;
    storm(&s, None, "loopback").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storm_through_a_lossy_relay() -> anyhow::Result<()> {
    let _one = ONE_STORM.lock().await;
    let s = storm_server().await?;
    let relay = Relay::start(s.addr, Duration::from_millis(25)).await?;
    let label = format!("{RELAY_LOSS}% loss, +50 ms RTT");
    storm(&s, Some(&relay), &label).await?;
    let (dropped, passed) =
        (relay.dropped.load(Ordering::Relaxed), relay.passed.load(Ordering::Relaxed));
    println!(
        "[{label}] relay dropped {dropped} of {} datagrams ({:.1}%, set-up included)",
        dropped + passed,
        100.0 * dropped as f64 / (dropped + passed).max(1) as f64
    );
    assert!(dropped > 0);
    Ok(())
}

/// Regression: the server noticed a forced disconnect only at the idle
/// timeout when the CONNECTION_CLOSE arrived during a fast upload. The
/// close was one of the datagrams the kernel dropped from the server's
/// full 208 KiB socket buffer; qchatd now asks for 4 MiB.
#[tokio::test]
async fn a_closed_connection_goes_offline_at_once_even_mid_upload() -> anyhow::Result<()> {
    // A 64 MiB upload at full speed on 2 cores: not beside a storm.
    let _one = ONE_STORM.lock().await;
    let idle = 10;
    let s = TestServer::start_with(&["--idle-timeout-secs", &idle.to_string()]).await?;
    s.tenant("acme", false).await?;
    s.user("acme", "ann", PW).await?;
    s.user("acme", "bob", PW).await?;
    s.room("acme", "general").await?;
    let (ann, mut ann_events) =
        within("ann", Client::connect(config(s.addr, &s.fingerprint, "ann"))).await?;
    ann.join_room("general").await?;
    let dir = tempfile::tempdir()?;
    let mut slowest = Duration::ZERO;
    for round in 0..3u8 {
        let file = dir.path().join(format!("big{round}.bin"));
        std::fs::write(&file, vec![round; 64 << 20])?;
        let mut cfg = config(s.addr, &s.fingerprint, "bob");
        cfg.reconnect = false;
        let (bob, _bob_events) = within("bob", Client::connect(cfg)).await?;
        bob.join_room("general").await?;
        let upload = bob.upload("general", &file)?;
        let chatter = {
            let bob = bob.clone();
            tokio::spawn(async move {
                for i in 0.. {
                    if bob.send("general", &format!("chatter {i}")).await.is_err() {
                        break;
                    }
                }
            })
        };
        // Let the upload get going at full speed.
        within("upload under way", async {
            while upload.snapshot().sent < 8 << 20 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        let closed_at = Instant::now();
        bob.force_disconnect();
        within("bob offline", async {
            loop {
                match ann_events.recv().await {
                    Some(ClientEvent::Presence(p)) if p.user == "bob" && !p.online => break,
                    Some(_) => {}
                    None => panic!("ann's events ended"),
                }
            }
        })
        .await;
        slowest = slowest.max(closed_at.elapsed());
        chatter.abort();
    }
    println!("slowest offline after a forced disconnect mid-upload: {slowest:?}");
    assert!(
        slowest < Duration::from_secs(2),
        "the server noticed the close after {slowest:?} (idle timeout {idle}s)"
    );
    Ok(())
}
