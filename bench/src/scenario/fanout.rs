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
//!
//! With `--rate R` a sender is paced instead: message k goes out at
//! k / R seconds into the round whatever happened to the earlier ones, and
//! its latency counts from that due time (a late sender's wait is counted).
//!
//! Scenario `fanout-irc` is the same measurement with InspIRCd ([`irc`]) in
//! place of the quinn baseline: the peer users would run instead.

pub(crate) mod cluster;
pub(crate) mod irc;
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
use tokio::io::AsyncWriteExt as _;
use tokio::net::tcp::OwnedWriteHalf;
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
    /// Messages per second per sender; 0 is the closed loop (`--window`).
    /// One case per value.
    #[arg(long, value_delimiter = ',', default_values_t = [0.0])]
    rate: Vec<f64>,
    /// Set by `fanout-irc --quickack`.
    #[arg(skip)]
    quickack: bool,
}

/// Flags of `fanout-irc`: the same measurement against InspIRCd, by default
/// at 500 clients, closed loop and paced at 200 messages/s per sender.
#[derive(Debug, clap::Args)]
pub(crate) struct IrcArgs {
    /// Clients in the room (channel); one case per value.
    #[arg(long, value_delimiter = ',', default_values_t = [500])]
    clients: Vec<usize>,
    /// Senders (among the clients); one case per value.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 10])]
    senders: Vec<usize>,
    /// Rounds per side and case (qchat and InspIRCd alternate).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds each round sends for.
    #[arg(long, default_value_t = 3.0)]
    secs: f64,
    /// Messages a sender may have out in the closed loop.
    #[arg(long, default_value_t = 1)]
    window: usize,
    /// Message body bytes (the timestamp tag plus padding).
    #[arg(long, default_value_t = 100)]
    body_bytes: usize,
    /// Distinct qchat users the connections are spread over.
    #[arg(long, default_value_t = 100)]
    users: usize,
    /// qchat client connections per UDP socket.
    #[arg(long, default_value_t = 32)]
    per_socket: usize,
    /// qchatd's SQLite durability (`full` or `normal`).
    #[arg(long, default_value = "full")]
    durability: String,
    /// Messages per second per sender; 0 is the closed loop. One case per value.
    #[arg(long, value_delimiter = ',', default_values_t = [0.0, 200.0])]
    rate: Vec<f64>,
    /// The IRC clients acknowledge every read at once (`TCP_QUICKACK`)
    /// instead of with Linux's delayed ACKs.
    #[arg(long)]
    quickack: bool,
}

impl From<IrcArgs> for Args {
    fn from(a: IrcArgs) -> Self {
        Self {
            clients: a.clients,
            senders: a.senders,
            rounds: a.rounds,
            secs: a.secs,
            window: a.window,
            body_bytes: a.body_bytes,
            users: a.users,
            per_socket: a.per_socket,
            durability: a.durability,
            rate: a.rate,
            quickack: a.quickack,
        }
    }
}

/// The server qchat is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peer {
    /// The minimal quinn fan-out server ([`server`]).
    Quinn,
    /// InspIRCd over TCP ([`irc`]).
    Irc,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Self::Quinn => "baseline",
            Self::Irc => "InspIRCd",
        }
    }
}

/// Which server a pool of clients talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Qchat,
    Baseline,
    Irc,
}

/// The peer server of a run, in its own process.
enum PeerProcess {
    Quinn(BaselineProcess),
    Irc(irc::Inspircd),
}

impl PeerProcess {
    async fn stop(self) {
        match self {
            Self::Quinn(p) => p.stop().await,
            Self::Irc(p) => p.stop().await,
        }
    }
}

/// Runs the scenario against the quinn baseline.
pub(crate) async fn run(args: Args) -> anyhow::Result<Report> {
    run_against(args, Peer::Quinn).await
}

/// Runs `fanout-irc`: the same against InspIRCd.
pub(crate) async fn run_irc(args: IrcArgs) -> anyhow::Result<Report> {
    run_against(args.into(), Peer::Irc).await
}

/// Runs the measurement against `peer`.
async fn run_against(args: Args, peer: Peer) -> anyhow::Result<Report> {
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
    ensure!(
        args.rate.iter().all(|&r| (0.0..=100_000.0).contains(&r)),
        "--rate must be in [0, 100000]"
    );
    ensure!(
        peer != Peer::Irc || args.body_bytes <= 400,
        "--body-bytes must be at most 400 against IRC (512-byte lines)"
    );
    let sockets = max_n.div_ceil(args.per_socket.max(1));

    let qchatd = qchat_tests::TestServer::start_logging(
        &[
            "--max-connections-per-ip",
            "20000",
            "--max-connections",
            "20000",
            // CONNECT_PARALLEL log-ins at once from 127.0.0.1: those being
            // checked count against the per-address allowance.
            "--login-failures",
            "100000",
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
    let (peer_process, b_eps) = match peer {
        Peer::Quinn => {
            let p = BaselineProcess::start("fanout-server").await?;
            let eps = Arc::new(Endpoints::baseline(p.addr, &p.cert, sockets)?);
            (PeerProcess::Quinn(p), Some(eps))
        }
        Peer::Irc => (PeerProcess::Irc(irc::Inspircd::start().await?), None),
    };
    let name = peer.name();

    let mut report = Report::new(
        if peer == Peer::Irc { "fanout-irc" } else { "fanout" },
        &[
            "clients",
            "senders",
            "rate/sender",
            "qchat deliveries/s",
            &format!("{name} deliveries/s"),
            "ratio",
            "qchat p50 / p99 / max ms",
            &format!("{name} p50 / p99 / max ms"),
            "p99 ratio",
            &format!("server CPU µs/delivery qchat / {name}"),
            &format!("client CPU µs/delivery qchat / {name}"),
            "qchat delivered",
        ],
    );
    let epoch = Instant::now();
    let mut round_id = 0u64;
    for &n in &args.clients {
        let peer_pool = match (&peer_process, &b_eps) {
            (PeerProcess::Quinn(p), Some(eps)) => {
                let pids = p.pid().into_iter().collect();
                Pool::connect(Side::Baseline, std::slice::from_ref(eps), n, &[], epoch, pids)
                    .await?
            }
            (PeerProcess::Irc(p), _) => {
                Pool::connect_irc(p.addr, n, args.quickack, epoch, p.pid()).await?
            }
            (PeerProcess::Quinn(_), None) => anyhow::bail!("no baseline endpoints"),
        };
        let q_pids = qchatd.pid().into_iter().collect();
        let q_pool =
            Pool::connect(Side::Qchat, std::slice::from_ref(&q_eps), n, &tokens, epoch, q_pids)
                .await?;
        let mut pools = [q_pool, peer_pool];
        for (&senders, &rate) in
            args.senders.iter().flat_map(|s| args.rate.iter().map(move |r| (s, r)))
        {
            let pace = (rate > 0.0).then_some(rate);
            let mut acc = [Acc::default(), Acc::default()];
            for r in 0..args.rounds {
                let order = if r % 2 == 0 { [0, 1] } else { [1, 0] };
                for side in order {
                    round_id += 1;
                    let out = pools[side].round(round_id, senders, pace, &args, epoch).await?;
                    acc[side].add(out);
                }
            }
            let [q, b] = &mut acc;
            let (qp, bp) = (q.percentiles(), b.percentiles());
            report.row(vec![
                n.to_string(),
                senders.to_string(),
                pace.map_or_else(
                    || format!("closed, window {}", args.window),
                    |r| format!("{r}/s"),
                ),
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
                format!(
                    "{:.1} / {:.1}",
                    q.client_cpu_per_delivery_us(),
                    b.client_cpu_per_delivery_us()
                ),
                format!("{}/{}", q.delivered, q.expected),
            ]);
            report.note(format!(
                "N={n}, {senders} sender(s), rate {rate}: per-round deliveries/s qchat {:?}, \
                 {name} {:?}; {name} delivered {}/{}; qchat lagged events {}",
                q.round_rates,
                b.round_rates,
                b.delivered,
                b.expected,
                pools[0].lagged()
            ));
            eprintln!("done: N={n}, senders={senders}, rate={rate}");
        }
        for pool in pools {
            pool.close().await;
        }
    }
    q_eps.close();
    if let Some(eps) = b_eps {
        eps.close();
    }
    peer_process.stop().await;
    report.note(format!(
        "{} s per round, {} round(s) per side alternating, window {}, {}-byte bodies, \
         qchat connections over {} users (resume), {} connections per client socket; \
         qchatd synchronous={}, log level warn. Latency: send timestamp (paced: the due \
         time) to arrival at each receiver, over every delivery of every round. Server CPU: \
         user + system time of the server process over the rounds (from /proc) divided by \
         the deliveries; client CPU: the same for this process (every client of both \
         sides, with their reader tasks).",
        args.secs,
        args.rounds,
        args.window,
        args.body_bytes,
        args.users.min(max_n),
        args.per_socket,
        args.durability.to_uppercase()
    ));
    if peer == Peer::Irc {
        report.note(format!(
            "InspIRCd {} (Debian), its own config: loopback, no flood limits, echo-message \
             (a sender gets its own message, so N deliveries per message on both sides); \
             IRC clients TCP_NODELAY, delayed ACKs {}.",
            inspircd_version(),
            if args.quickack {
                "off (TCP_QUICKACK after every read)"
            } else {
                "on (Linux default)"
            }
        ));
    }
    Ok(report)
}

/// `inspircd --version`'s answer, for the report.
fn inspircd_version() -> String {
    std::process::Command::new("/usr/sbin/inspircd")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map_or_else(|| "(version unknown)".into(), |v| v.trim().to_owned())
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

/// The writing half of a client: a QUIC stream or an IRC connection.
enum Writer {
    Quic(SendStream),
    Tcp(OwnedWriteHalf),
}

impl Writer {
    /// Writes one message as the side frames it (`payload` is already an IRC line).
    async fn write(&mut self, payload: &[u8]) -> anyhow::Result<()> {
        match self {
            Self::Quic(send) => write_frame(send, payload).await,
            Self::Tcp(w) => Ok(w.write_all(payload).await?),
        }
    }
}

/// N connected clients of one side, each with a reader task.
struct Pool {
    side: Side,
    sends: Vec<Option<Writer>>,
    conns: Vec<Connection>,
    readers: JoinSet<()>,
    round: watch::Sender<Option<Arc<Round>>>,
    lagged: Arc<AtomicU64>,
    /// The server processes (several for a cluster), for their CPU time.
    server_pids: Vec<u32>,
}

impl Pool {
    /// `n` clients, the `i`th of `eps[i % eps.len()]` (the nodes of a
    /// cluster in turn).
    async fn connect(
        side: Side,
        eps: &[Arc<Endpoints>],
        n: usize,
        tokens: &[String],
        epoch: Instant,
        server_pids: Vec<u32>,
    ) -> anyhow::Result<Self> {
        ensure!(!eps.is_empty(), "no endpoints");
        let sem = Arc::new(Semaphore::new(CONNECT_PARALLEL));
        let mut set = JoinSet::new();
        for i in 0..n {
            let (sem, eps) = (sem.clone(), eps[i % eps.len()].clone());
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
            server_pids,
        };
        for (i, link) in links.into_iter().enumerate() {
            let link = link.context("a connection is missing")?;
            pool.conns.push(link.conn);
            pool.sends.push(Some(Writer::Quic(link.send)));
            let rx = pool.round.subscribe();
            pool.readers.spawn(read_loop(side, i, link.reader, rx, pool.lagged.clone(), epoch));
        }
        Ok(pool)
    }

    /// `n` IRC clients of `addr`, registered and in the channel.
    async fn connect_irc(
        addr: std::net::SocketAddr,
        n: usize,
        quickack: bool,
        epoch: Instant,
        server_pid: Option<u32>,
    ) -> anyhow::Result<Self> {
        let sem = Arc::new(Semaphore::new(CONNECT_PARALLEL));
        let mut set = JoinSet::new();
        for i in 0..n {
            let sem = sem.clone();
            set.spawn(async move {
                let _permit = sem.acquire().await?;
                Ok::<_, anyhow::Error>((i, irc::connect(addr, &format!("q{i}"), quickack).await?))
            });
        }
        let mut links: Vec<Option<irc::IrcLink>> = (0..n).map(|_| None).collect();
        while let Some(r) = set.join_next().await {
            let (i, link) = r??;
            links[i] = Some(link);
        }
        let (round, _) = watch::channel(None);
        let mut pool = Self {
            side: Side::Irc,
            sends: Vec::with_capacity(n),
            conns: Vec::new(),
            readers: JoinSet::new(),
            round,
            lagged: Arc::new(AtomicU64::new(0)),
            server_pids: server_pid.into_iter().collect(),
        };
        for (i, link) in links.into_iter().enumerate() {
            let link = link.context("a connection is missing")?;
            pool.sends.push(Some(Writer::Tcp(link.writer)));
            let rx = pool.round.subscribe();
            pool.readers.spawn(irc_read_loop(i, link.reader, rx, epoch));
        }
        Ok(pool)
    }

    fn lagged(&self) -> u64 {
        self.lagged.load(Ordering::Relaxed)
    }

    /// CPU time of the server processes so far (`None` when none is known
    /// or one cannot be read).
    fn cpu(&self) -> Option<Duration> {
        if self.server_pids.is_empty() {
            return None;
        }
        self.server_pids.iter().map(|p| process::cpu_time(*p).ok()).sum()
    }

    /// One round: `senders` senders for `args.secs` (closed loop, or paced
    /// at `pace` messages/s each), then a bounded drain.
    async fn round(
        &mut self,
        id: u64,
        senders: usize,
        pace: Option<f64>,
        args: &Args,
        epoch: Instant,
    ) -> anyhow::Result<RoundOut> {
        let n = self.sends.len();
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let (cap, window) = match pace {
            // Paced: every message of the round may be out at once.
            Some(rate) => {
                let cap = ((args.secs * rate).ceil() as usize + 2).clamp(16, (1 << 22) / senders);
                (cap, cap)
            }
            None => (
                ((args.secs * 20_000.0) as usize * args.window).clamp(16, (1 << 22) / senders),
                args.window,
            ),
        };
        let round = Arc::new(Round::new(id, n, senders, cap, window));
        self.round.send_replace(Some(round.clone()));
        let cpu_start = self.cpu();
        let client_start = process::cpu_time(std::process::id()).ok();
        let start = Instant::now();
        let start_us = micros(epoch);
        let until = start + Duration::from_secs_f64(args.secs);
        let mut tasks = JoinSet::new();
        for s in 0..senders {
            let send = self.sends[s].take().context("sender stream in use")?;
            let round = round.clone();
            let plan = Plan {
                side: self.side,
                until,
                body_bytes: args.body_bytes,
                epoch,
                // Paced senders start spread over one interval, not in step.
                #[allow(clippy::cast_precision_loss)]
                pace: pace
                    .map(|r| (start + Duration::from_secs_f64(s as f64 / (r * senders as f64)), r)),
            };
            tasks.spawn(async move {
                let r = send_loop(plan, send, round, s).await;
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
                tokio::time::timeout(STALL, w.acquire_many(u32::try_from(window)?)).await
            {
                p.forget();
            } else {
                stalled += 1;
            }
        }
        self.round.send_replace(None);
        let cpu = match (cpu_start, self.cpu()) {
            (Some(a), Some(b)) => b.saturating_sub(a).as_secs_f64(),
            _ => 0.0,
        };
        let client_cpu = match (client_start, process::cpu_time(std::process::id()).ok()) {
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
        Ok(RoundOut { expected: sent * n as u64, samples, secs, cpu, client_cpu })
    }

    async fn close(mut self) {
        for c in &self.conns {
            c.close(0u32.into(), b"bench done");
        }
        // IRC connections close with their writing halves.
        self.sends.clear();
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
            Side::Baseline | Side::Irc => std::str::from_utf8(&frame).ok().and_then(Tag::parse),
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

async fn irc_read_loop(
    me: usize,
    mut reader: irc::LineReader,
    round: watch::Receiver<Option<Arc<Round>>>,
    epoch: Instant,
) {
    while let Ok(Some(line)) = reader.next().await {
        let now = micros(epoch);
        let Some(tag) = irc::privmsg_text(&line).and_then(Tag::parse) else { continue };
        let current = round.borrow().clone();
        if let Some(r) = current.filter(|r| r.id == tag.round) {
            r.deliver(me, tag, now);
        }
    }
}

/// How one sender sends in a round.
struct Plan {
    side: Side,
    /// No message is sent at or after this.
    until: Instant,
    body_bytes: usize,
    epoch: Instant,
    /// Paced: the first message's due time and messages per second.
    pace: Option<(Instant, f64)>,
}

/// Sends until `plan.until`, each message after a window permit and, paced,
/// at its due time; returns the writer, how many were sent, and whether it
/// stalled.
async fn send_loop(
    plan: Plan,
    mut send: Writer,
    round: Arc<Round>,
    sender: usize,
) -> (Writer, u64, bool) {
    let Plan { side, until, body_bytes, epoch, pace } = plan;
    let mut sent = 0;
    for seq in 0..round.cap {
        #[allow(clippy::cast_precision_loss)]
        let due = pace.map(|(first, rate)| first + Duration::from_secs_f64(seq as f64 / rate));
        if due.unwrap_or_else(Instant::now) >= until || Instant::now() >= until {
            break;
        }
        if let Some(due) = due {
            tokio::time::sleep_until(due).await;
        }
        match tokio::time::timeout(STALL, round.windows[sender].acquire()).await {
            Ok(Ok(p)) => p.forget(),
            _ => return (send, sent, true),
        }
        let sent_us = match due {
            Some(due) => u64::try_from(due.duration_since(epoch).as_micros()).unwrap_or(u64::MAX),
            None => micros(epoch),
        };
        let tag = Tag { round: round.id, sender, seq, sent_us };
        let body = tag.body(body_bytes);
        let payload = match side {
            Side::Baseline => body.into_bytes(),
            Side::Irc => irc::privmsg(&body),
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
        if send.write(&payload).await.is_err() {
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
    /// CPU seconds of this process (the clients) during the round.
    client_cpu: f64,
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
    client_cpu: f64,
}

impl Acc {
    fn add(&mut self, r: RoundOut) {
        let d = r.samples.len() as u64;
        self.delivered += d;
        self.expected += r.expected;
        self.secs += r.secs;
        self.cpu += r.cpu;
        self.client_cpu += r.client_cpu;
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

    /// CPU of the load generator (this process: the clients) per delivery,
    /// microseconds: the share of the machine the clients take.
    #[allow(clippy::cast_precision_loss)]
    fn client_cpu_per_delivery_us(&self) -> f64 {
        if self.delivered == 0 { 0.0 } else { self.client_cpu * 1e6 / self.delivered as f64 }
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
