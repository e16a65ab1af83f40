//! Scenario `fanout`: N clients in one room, 1 and 10 senders; deliveries per
//! second and end-to-end latency (send timestamp in the body, read at each
//! receiver), qchat against a minimal quinn fan-out server in the same run.
//!
//! Both sides use the same light clients ([`link`]), the same message bodies
//! and the same sending discipline: each sender sends its next message once
//! its previous one (`--window` previous ones) reached every client, for
//! `--secs` seconds per round; qchat and baseline rounds alternate. A sender
//! is one of the N clients and receives its own message too, on both sides.
//!
//! qchat side: the release `qchatd` (via `qchat_tests::TestServer`, logging
//! at `warn`), users registered over the protocol and joined to the room once,
//! then N connections logging in with `resume` (connections share the users
//! round-robin when N exceeds `--users`); messages are `send` requests, which
//! qchatd acknowledges only after the commit (`synchronous=FULL`).

pub(crate) mod link;
pub(crate) mod server;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context as _, ensure};
use qchat_protocol::FrameReader;
use quinn::{Connection, RecvStream, SendStream};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use self::link::{Endpoints, write_frame};
use crate::baseline::BaselineProcess;
use crate::process;
use crate::report::{Percentiles, Report, ms, ratio};

pub(crate) const TENANT: &str = "bench";
const ROOM: &str = "fanout";
pub(crate) const PASSWORD: &str = "bench password";
/// A sender whose message is not everywhere after this long gives up the round.
const STALL: Duration = Duration::from_secs(10);
/// Connections set up at once.
const CONNECT_PARALLEL: usize = 32;

/// Flags of this scenario.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Clients in the room; one case per value.
    #[arg(long, value_delimiter = ',', default_values_t = [10, 100, 500, 1000])]
    clients: Vec<usize>,
    /// Senders (among the clients); one case per value.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10])]
    senders: Vec<usize>,
    /// Rounds per side and case (qchat and baseline alternate).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Seconds each round sends for.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Messages a sender may have out that have not yet reached every client.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// Message body bytes (the timestamp tag plus padding).
    #[arg(long, default_value_t = 100)]
    body_bytes: usize,
    /// Distinct qchat users the connections are spread over.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// Client connections per UDP socket.
    #[arg(long, default_value_t = 32)]
    per_socket: usize,
    /// qchatd's SQLite durability (`full` or `normal`).
    #[arg(long, default_value = "full")]
    durability: String,
}

/// Which server a pool of clients talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Qchat,
    Baseline,
}

/// Runs the scenario.
pub(crate) async fn run(args: Args) -> anyhow::Result<Report> {
    let max_n = args.clients.iter().copied().max().context("--clients is empty")?;
    let max_s = args.senders.iter().copied().max().context("--senders is empty")?;
    ensure!(
        args.clients.iter().all(|&n| n >= max_s),
        "every --clients value must be ≥ the senders"
    );
    ensure!(args.senders.iter().all(|&s| s >= 1), "--senders must be ≥ 1");
    ensure!(args.rounds >= 1 && args.window >= 1 && args.users >= 1, "rounds, window, users ≥ 1");
    ensure!(args.secs > 0.0 && args.secs <= 60.0, "--secs must be in (0, 60]");
    ensure!(args.body_bytes >= 48 && args.body_bytes <= 16_000, "--body-bytes must be 48..=16000");
    let sockets = max_n.div_ceil(args.per_socket.max(1));

    let qchatd = qchat_tests::TestServer::start_logging(
        &[
            "--max-connections-per-ip",
            "20000",
            "--max-connections",
            "20000",
            "--durability",
            &args.durability,
        ],
        "warn",
    )
    .await?;
    qchatd.tenant(TENANT, true).await?;
    qchatd.room(TENANT, ROOM).await?;
    let q_eps = Arc::new(Endpoints::qchat(qchatd.addr, &qchatd.data_dir(), sockets)?);
    let tokens = register(&q_eps, args.users.min(max_n), "u", &[ROOM]).await?;
    let baseline = BaselineProcess::start("fanout-server").await?;
    let b_eps = Arc::new(Endpoints::baseline(baseline.addr, &baseline.cert, sockets)?);

    let mut report = Report::new(
        "fanout",
        &[
            "clients",
            "senders",
            "qchat deliveries/s",
            "baseline deliveries/s",
            "ratio",
            "qchat p50 / p99 / max ms",
            "baseline p50 / p99 / max ms",
            "p99 ratio",
            "server CPU µs/delivery qchat / baseline",
            "qchat delivered",
        ],
    );
    let epoch = Instant::now();
    let mut round_id = 0u64;
    for &n in &args.clients {
        let mut pools = [
            Pool::connect(Side::Qchat, &q_eps, n, &tokens, epoch, qchatd.pid()).await?,
            Pool::connect(Side::Baseline, &b_eps, n, &[], epoch, baseline.pid()).await?,
        ];
        for &senders in &args.senders {
            let mut acc = [Acc::default(), Acc::default()];
            for r in 0..args.rounds {
                let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
                for side in order {
                    round_id += 1;
                    let out = pools[side].round(round_id, senders, &args, epoch).await?;
                    acc[side].add(out);
                }
            }
            let [q, b] = &mut acc;
            let (qp, bp) = (q.percentiles(), b.percentiles());
            report.row(vec![
                n.to_string(),
                senders.to_string(),
                format!("{:.0}", q.rate()),
                format!("{:.0}", b.rate()),
                ratio(q.rate(), b.rate()),
                triple(qp),
                triple(bp),
                match (qp, bp) {
                    (Some(q), Some(b)) => ratio(q.p99.as_secs_f64(), b.p99.as_secs_f64()),
                    _ => "n/a".into(),
                },
                format!("{:.1} / {:.1}", q.cpu_per_delivery_us(), b.cpu_per_delivery_us()),
                format!("{}/{}", q.delivered, q.expected),
            ]);
            report.note(format!(
                "N={n}, {senders} sender(s): per-round deliveries/s qchat {:?}, baseline {:?}; \
                 baseline delivered {}/{}; qchat lagged events {}",
                q.round_rates,
                b.round_rates,
                b.delivered,
                b.expected,
                pools[0].lagged()
            ));
            eprintln!("done: N={n}, senders={senders}");
        }
        for pool in pools {
            pool.close().await;
        }
    }
    q_eps.close();
    b_eps.close();
    baseline.stop().await;
    report.note(format!(
        "{} s per round, {} round(s) per side alternating, window {}, {}-byte bodies, \
         qchat connections over {} users (resume), {} connections per client socket; \
         qchatd synchronous={}, log level warn. Latency: send timestamp to arrival at \
         each receiver, over every delivery of every round. Server CPU: user + system time \
         of the server process over the rounds (from /proc) divided by the deliveries.",
        args.secs,
        args.rounds,
        args.window,
        args.body_bytes,
        args.users.min(max_n),
        args.per_socket,
        args.durability.to_uppercase()
    ));
    Ok(report)
}

fn triple(p: Option<Percentiles>) -> String {
    p.map_or_else(|| "n/a".into(), |p| format!("{} / {} / {}", ms(p.p50), ms(p.p99), ms(p.max)))
}

/// Registers `count` users named `{prefix}{i}` with `register` (an argon2
/// hash each), joins each to `rooms`, and returns their session tokens.
pub(crate) async fn register(
    eps: &Arc<Endpoints>,
    count: usize,
    prefix: &str,
    rooms: &[&str],
) -> anyhow::Result<Vec<String>> {
    let sem = Arc::new(Semaphore::new(8));
    let mut set = JoinSet::new();
    for i in 0..count {
        let (sem, eps) = (sem.clone(), eps.clone());
        let user = format!("{prefix}{i}");
        let rooms: Vec<String> = rooms.iter().map(|r| (*r).to_owned()).collect();
        set.spawn(async move {
            let _permit = sem.acquire().await?;
            let mut link = eps.connect().await?;
            let ok = link
                .call(1, "register", json!({"tenant": TENANT, "user": user, "password": PASSWORD}))
                .await?;
            let token = ok["token"].as_str().context("no token")?.to_owned();
            for (k, room) in rooms.iter().enumerate() {
                link.call(2 + k as u64, "room.join", json!({"room": room})).await?;
            }
            link.conn.close(0u32.into(), b"registered");
            Ok::<_, anyhow::Error>((i, token))
        });
    }
    let mut tokens = vec![String::new(); count];
    while let Some(r) = set.join_next().await {
        let (i, token) = r??;
        tokens[i] = token;
    }
    Ok(tokens)
}

/// N connected clients of one side, each with a reader task.
struct Pool {
    side: Side,
    sends: Vec<Option<SendStream>>,
    conns: Vec<Connection>,
    readers: JoinSet<()>,
    round: watch::Sender<Option<Arc<Round>>>,
    lagged: Arc<AtomicU64>,
    /// The server process, for its CPU time.
    server_pid: Option<u32>,
}

impl Pool {
    async fn connect(
        side: Side,
        eps: &Arc<Endpoints>,
        n: usize,
        tokens: &[String],
        epoch: Instant,
        server_pid: Option<u32>,
    ) -> anyhow::Result<Self> {
        let sem = Arc::new(Semaphore::new(CONNECT_PARALLEL));
        let mut set = JoinSet::new();
        for i in 0..n {
            let (sem, eps) = (sem.clone(), eps.clone());
            let token = (side == Side::Qchat).then(|| tokens[i % tokens.len()].clone());
            set.spawn(async move {
                let _permit = sem.acquire().await?;
                let mut link = eps.connect().await?;
                match token {
                    Some(token) => {
                        link.call(1, "resume", json!({"token": token})).await?;
                    }
                    None => {
                        link.write(&[]).await?;
                        let welcome = tokio::time::timeout(link::SETUP_STEP, link.reader.next())
                            .await
                            .context("baseline welcome timed out")??;
                        ensure!(welcome.is_some_and(|w| w.is_empty()), "no baseline welcome");
                    }
                }
                Ok::<_, anyhow::Error>((i, link))
            });
        }
        let mut links: Vec<Option<link::Link>> = (0..n).map(|_| None).collect();
        while let Some(r) = set.join_next().await {
            let (i, link) = r??;
            links[i] = Some(link);
        }
        let (round, _) = watch::channel(None);
        let lagged = Arc::new(AtomicU64::new(0));
        let mut pool = Self {
            side,
            sends: Vec::with_capacity(n),
            conns: Vec::with_capacity(n),
            readers: JoinSet::new(),
            round,
            lagged,
            server_pid,
        };
        for (i, link) in links.into_iter().enumerate() {
            let link = link.context("a connection is missing")?;
            pool.conns.push(link.conn);
            pool.sends.push(Some(link.send));
            let rx = pool.round.subscribe();
            pool.readers.spawn(read_loop(side, i, link.reader, rx, pool.lagged.clone(), epoch));
        }
        Ok(pool)
    }

    fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }

    /// One round: `senders` senders for `args.secs`, then a bounded drain.
    async fn round(
        &mut self,
        id: u64,
        senders: usize,
        args: &Args,
        epoch: Instant,
    ) -> anyhow::Result<RoundOut> {
        let n = self.conns.len();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let cap = ((args.secs * 20_000.0) as usize * args.window).clamp(16, (1 << 22) / senders);
        let round = Arc::new(Round::new(id, n, senders, cap, args.window));
        self.round.send_replace(Some(round.clone()));
        let cpu_start = self.server_pid.and_then(|p| process::cpu_time(p).ok());
        let start = Instant::now();
        let start_us = micros(epoch);
        let until = start + Duration::from_secs_f64(args.secs);
        let mut tasks = JoinSet::new();
        for s in 0..senders {
            let send = self.sends[s].take().context("sender stream in use")?;
            let round = round.clone();
            let (side, body_bytes) = (self.side, args.body_bytes);
            tasks.spawn(async move {
                let r = send_loop(side, send, round, s, until, body_bytes, epoch).await;
                (s, r)
            });
        }
        let mut sent = 0u64;
        let mut stalled = 0;
        while let Some(r) = tasks.join_next().await {
            let (s, (send, count, stall)) = r?;
            self.sends[s] = Some(send);
            sent += count;
            stalled += usize::from(stall);
        }
        // Drain: every message out must reach every client (bounded).
        for w in &round.windows {
            if let Ok(Ok(p)) =
                tokio::time::timeout(STALL, w.acquire_many(u32::try_from(args.window)?)).await
            {
                p.forget();
            } else {
                stalled += 1;
            }
        }
        self.round.send_replace(None);
        let cpu = match (cpu_start, self.server_pid.and_then(|p| process::cpu_time(p).ok())) {
            (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64(),
            _ => 0.0,
        };
        let mut samples = Vec::new();
        for s in &round.samples {
            samples.append(&mut s.lock().unwrap_or_else(PoisonError::into_inner));
        }
        let last = round.last_us.load(Ordering::Relaxed);
        let secs = Duration::from_micros(last.saturating_sub(start_us)).as_secs_f64();
        if stalled > 0 {
            eprintln!("round {id} ({:?}): {stalled} sender(s) stalled", self.side);
        }
        Ok(RoundOut { expected: sent * n as u64, samples, secs, cpu })
    }

    async fn close(mut self) {
        for c in &self.conns {
            c.close(0u32.into(), b"bench done");
        }
        self.readers.abort_all();
        while self.readers.join_next().await.is_some() {}
    }
}

/// The shared tally of one round.
struct Round {
    id: u64,
    clients: u32,
    cap: usize,
    /// Deliveries of each (sender, seq) so far.
    counts: Vec<AtomicU32>,
    /// Per sender: messages it may still send before earlier ones are everywhere.
    windows: Vec<Semaphore>,
    /// Per receiver: latencies in microseconds.
    samples: Vec<Mutex<Vec<u32>>>,
    last_us: AtomicU64,
}

impl Round {
    fn new(id: u64, clients: usize, senders: usize, cap: usize, window: usize) -> Self {
        Self {
            id,
            clients: u32::try_from(clients).unwrap_or(u32::MAX),
            cap,
            counts: (0..senders * cap).map(|_| AtomicU32::new(0)).collect(),
            windows: (0..senders).map(|_| Semaphore::new(window)).collect(),
            samples: (0..clients).map(|_| Mutex::new(Vec::new())).collect(),
            last_us: AtomicU64::new(0),
        }
    }

    fn deliver(&self, receiver: usize, tag: Tag, now_us: u64) {
        let (Some(samples), true) =
            (self.samples.get(receiver), tag.sender < self.windows.len() && tag.seq < self.cap)
        else {
            return;
        };
        let lat = u32::try_from(now_us.saturating_sub(tag.sent_us)).unwrap_or(u32::MAX);
        samples.lock().unwrap_or_else(PoisonError::into_inner).push(lat);
        self.last_us.fetch_max(now_us, Ordering::Relaxed);
        let c = self.counts[tag.sender * self.cap + tag.seq].fetch_add(1, Ordering::AcqRel) + 1;
        if c == self.clients {
            self.windows[tag.sender].add_permits(1);
        }
    }
}

/// What a message body carries: `round:sender:seq:sent_us:` then padding.
#[derive(Debug, Clone, Copy)]
struct Tag {
    round: u64,
    sender: usize,
    seq: usize,
    sent_us: u64,
}

impl Tag {
    fn body(self, len: usize) -> String {
        let mut b = format!("{}:{}:{}:{}:", self.round, self.sender, self.seq, self.sent_us);
        while b.len() < len {
            b.push('x');
        }
        b
    }

    fn parse(body: &str) -> Option<Self> {
        let mut it = body.splitn(5, ':');
        Some(Self {
            round: it.next()?.parse().ok()?,
            sender: it.next()?.parse().ok()?,
            seq: it.next()?.parse().ok()?,
            sent_us: it.next()?.parse().ok()?,
        })
    }
}

fn micros(epoch: Instant) -> u64 {
    u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// The parts of a qchat frame the reader needs.
#[derive(Deserialize)]
struct Frame<'a> {
    #[serde(borrow)]
    ev: Option<Cow<'a, str>>,
    #[serde(borrow)]
    body: Option<Cow<'a, str>>,
}

async fn read_loop(
    side: Side,
    me: usize,
    mut reader: FrameReader<RecvStream>,
    round: watch::Receiver<Option<Arc<Round>>>,
    lagged: Arc<AtomicU64>,
    epoch: Instant,
) {
    while let Ok(Some(frame)) = reader.next().await {
        let now = micros(epoch);
        let tag = match side {
            Side::Baseline => std::str::from_utf8(&frame).ok().and_then(Tag::parse),
            Side::Qchat => match serde_json::from_slice::<Frame<'_>>(&frame) {
                Ok(Frame { ev: Some(ev), body: Some(body) }) if ev == "message" => {
                    Tag::parse(&body)
                }
                Ok(Frame { ev: Some(ev), .. }) if ev == "lagged" => {
                    lagged.fetch_add(1, Ordering::Relaxed);
                    None
                }
                _ => None,
            },
        };
        let Some(tag) = tag else { continue };
        let current = round.borrow().clone();
        if let Some(r) = current.filter(|r| r.id == tag.round) {
            r.deliver(me, tag, now);
        }
    }
}

/// Sends until `until`, each message after a window permit; returns the
/// stream, how many were sent, and whether it stalled.
async fn send_loop(
    side: Side,
    mut send: SendStream,
    round: Arc<Round>,
    sender: usize,
    until: Instant,
    body_bytes: usize,
    epoch: Instant,
) -> (SendStream, u64, bool) {
    let mut sent = 0;
    for seq in 0..round.cap {
        if Instant::now() >= until {
            break;
        }
        match tokio::time::timeout(STALL, round.windows[sender].acquire()).await {
            Ok(Ok(p)) => p.forget(),
            _ => return (send, sent, true),
        }
        let tag = Tag { round: round.id, sender, seq, sent_us: micros(epoch) };
        let body = tag.body(body_bytes);
        let payload = match side {
            Side::Baseline => body.into_bytes(),
            Side::Qchat => {
                let req = json!({
                    "id": seq + 1,
                    "op": "send",
                    "room": ROOM,
                    "client_msg_id": format!("{}-{sender}-{seq}", round.id),
                    "body": body,
                });
                match serde_json::to_vec(&req) {
                    Ok(v) => v,
                    Err(_) => return (send, sent, true),
                }
            }
        };
        if write_frame(&mut send, &payload).await.is_err() {
            return (send, sent, true);
        }
        sent += 1;
    }
    (send, sent, false)
}

/// One round's figures.
struct RoundOut {
    expected: u64,
    samples: Vec<u32>,
    secs: f64,
    /// Server CPU seconds (user + system) during the round.
    cpu: f64,
}

/// A side's figures over its rounds.
#[derive(Default)]
struct Acc {
    delivered: u64,
    expected: u64,
    secs: f64,
    samples: Vec<Duration>,
    round_rates: Vec<u64>,
    cpu: f64,
}

impl Acc {
    fn add(&mut self, r: RoundOut) {
        let d = r.samples.len() as u64;
        self.delivered += d;
        self.expected += r.expected;
        self.secs += r.secs;
        self.cpu += r.cpu;
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        self.round_rates.push(if r.secs > 0.0 { (d as f64 / r.secs) as u64 } else { 0 });
        self.samples.extend(r.samples.into_iter().map(|us| Duration::from_micros(us.into())));
    }

    #[allow(clippy::cast_precision_loss)]
    fn rate(&self) -> f64 {
        if self.secs > 0.0 { self.delivered as f64 / self.secs } else { 0.0 }
    }

    /// Server CPU per delivery, microseconds: robust to the machine's other
    /// load in a way rates and latencies are not.
    #[allow(clippy::cast_precision_loss)]
    fn cpu_per_delivery_us(&self) -> f64 {
        if self.delivered == 0 { 0.0 } else { self.cpu * 1e6 / self.delivered as f64 }
    }

    fn percentiles(&mut self) -> Option<Percentiles> {
        Percentiles::of(&mut self.samples)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_round_trip_at_the_body_size() {
        let tag = Tag { round: 7, sender: 3, seq: 41, sent_us: 123_456 };
        let body = tag.body(100);
        assert_eq!(body.len(), 100);
        let back = Tag::parse(&body).expect("parses");
        assert_eq!((back.round, back.sender, back.seq, back.sent_us), (7, 3, 41, 123_456));
        assert!(Tag::parse("hello").is_none());
    }

    #[test]
    fn a_message_frees_its_sender_once_everyone_has_it() {
        let round = Round::new(1, 2, 1, 16, 1);
        let tag = Tag { round: 1, sender: 0, seq: 0, sent_us: 10 };
        round.windows[0].try_acquire().expect("window").forget();
        round.deliver(0, tag, 30);
        assert_eq!(round.windows[0].available_permits(), 0);
        round.deliver(1, tag, 50);
        assert_eq!(round.windows[0].available_permits(), 1);
        assert_eq!(round.last_us.load(Ordering::Relaxed), 50);
        let lat: Vec<u32> =
            round.samples.iter().flat_map(|s| s.lock().expect("lock").clone()).collect();
        assert_eq!(lat, vec![20, 40]);
    }
}
