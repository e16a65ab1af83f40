//! One case of the durable-sends scenario: a fresh `qchatd` with a given
//! durability and commit batch, `senders` registered clients each in its own
//! room, all sending as fast as their acknowledgements come back for a fixed
//! time. Every acknowledgement is checked: each sender's seqs are 1, 2, 3...
//! with no duplicate, so every message was acknowledged exactly once.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use qchat_client::{Auth, Client, ClientConfig, Events, Trust};
use qchat_tests::{Backend, TestServer, within};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::sync::Barrier;
use tokio::task::JoinSet;

use crate::process::cpu_time;

const TENANT: &str = "bench";
const PASSWORD: &str = "bench password";
/// Clients connecting (and registering) at once while setting up.
const CONNECT_AT_ONCE: usize = 16;

/// What a case runs with.
#[derive(Debug, Clone, Copy)]
pub(super) struct Setup {
    /// `--durability`: `full` or `normal` (SQLite), or `postgres`: a fresh
    /// database on the PostgreSQL server (its `synchronous_commit`, on by
    /// default, makes each commit durable).
    pub durability: &'static str,
    /// `--max-commit-batch`.
    pub batch: usize,
    /// Concurrent senders.
    pub senders: usize,
    /// How long they send.
    pub duration: Duration,
}

/// What a case measured.
#[derive(Debug)]
pub(super) struct Outcome {
    /// Acknowledged messages.
    pub acked: u64,
    /// From the common start to the last acknowledgement.
    pub elapsed: Duration,
    /// Each send's time to its acknowledgement.
    pub latencies: Vec<Duration>,
    /// Transactions the writer committed during the run (from `/metrics`).
    pub commits: u64,
    /// Their total time in the writer, from `/metrics`.
    pub commit_time: Duration,
    /// CPU time qchatd used while the senders sent.
    pub server_cpu: Duration,
    /// CPU time the senders (this process) used meanwhile.
    pub client_cpu: Duration,
}

impl Outcome {
    /// Acknowledged messages per second.
    pub(super) fn rate(&self) -> f64 {
        self.acked as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Runs one case on a fresh server.
pub(super) async fn run(setup: Setup) -> anyhow::Result<Outcome> {
    let batch = setup.batch.to_string();
    let (backend, durability) = match setup.durability {
        "postgres" => (Backend::Postgres, "full"),
        d => (Backend::Sqlite, d),
    };
    let mut server = TestServer::start_on(
        backend,
        &[
            "--durability",
            durability,
            "--max-commit-batch",
            &batch,
            "--idle-timeout-secs",
            "60",
            "--max-connections-per-ip",
            "10000",
            "--metrics-listen",
            "127.0.0.1:0",
            "--log-format",
            "json",
        ],
        // info logs nothing per send; the metrics address is logged at info.
        "info",
    )
    .await?;
    server.tenant(TENANT, true).await?;
    let metrics = metrics_addr(&server).await?;
    let clients = connect_all(&server, setup.senders).await?;
    let (commits0, time0) = commit_stats(metrics).await?;

    let barrier = Arc::new(Barrier::new(setup.senders + 1));
    let mut tasks = JoinSet::new();
    for (i, (client, events)) in clients.into_iter().enumerate() {
        let barrier = barrier.clone();
        let duration = setup.duration;
        tasks.spawn(async move {
            let room = format!("r{i}");
            let _drain = drain(events);
            barrier.wait().await;
            let start = Instant::now();
            let mut latencies = Vec::new();
            let mut last = start;
            while start.elapsed() < duration {
                let sent = Instant::now();
                let body = format!("message {} from sender {i}", latencies.len() + 1);
                let ok = tokio::time::timeout(qchat_tests::STEP, client.send(&room, &body))
                    .await
                    .context("send timed out")??;
                last = Instant::now();
                latencies.push(last - sent);
                ensure!(
                    ok.seq == latencies.len() as u64 && !ok.duplicate,
                    "sender {i}: ack {} got seq {} (duplicate: {})",
                    latencies.len(),
                    ok.seq,
                    ok.duplicate
                );
            }
            let _ = client.quit(None).await;
            Ok::<_, anyhow::Error>((start, last, latencies))
        });
    }
    let pid = server.pid().context("qchatd pid")?;
    let cpu0 = (cpu_time(pid)?, cpu_time(std::process::id())?);
    barrier.wait().await;
    // A profiler can attach now (see docs/BENCHMARKS.md).
    eprintln!("durable: {} batch {} sending, qchatd pid {pid}", setup.durability, setup.batch);
    let mut latencies = Vec::new();
    let mut first: Option<Instant> = None;
    let mut end: Option<Instant> = None;
    while let Some(r) = within("senders", tasks.join_next()).await {
        let (start, last, mut l) = r??;
        first = Some(first.map_or(start, |f| f.min(start)));
        end = Some(end.map_or(last, |e| e.max(last)));
        latencies.append(&mut l);
    }
    let cpu1 = (cpu_time(pid)?, cpu_time(std::process::id())?);
    let (commits1, time1) = commit_stats(metrics).await?;
    let status = server.stop().await?;
    ensure!(status.success(), "qchatd exited with {status}");
    let (Some(first), Some(end)) = (first, end) else { bail!("no senders") };
    Ok(Outcome {
        acked: latencies.len() as u64,
        elapsed: end - first,
        latencies,
        commits: commits1 - commits0,
        commit_time: time1.saturating_sub(time0),
        server_cpu: cpu1.0.saturating_sub(cpu0.0),
        client_cpu: cpu1.1.saturating_sub(cpu0.1),
    })
}

/// Registers and connects `n` clients, each creating its own room `r<i>`, a
/// few at a time (each registration is an argon2 hash on the server).
async fn connect_all(server: &TestServer, n: usize) -> anyhow::Result<Vec<(Client, Events)>> {
    let mut out = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(CONNECT_AT_ONCE) {
        let mut set = JoinSet::new();
        for &i in chunk {
            let mut cfg = ClientConfig::new(
                server.addr.to_string(),
                TENANT,
                format!("s{i}"),
                Auth::Password(PASSWORD.into()),
                Trust::Fingerprint(server.fingerprint.clone()),
            );
            cfg.register = true;
            cfg.reconnect = false;
            set.spawn(async move {
                let (client, events) = within("connect", Client::connect(cfg)).await?;
                client.create_room(&format!("r{i}")).await?;
                Ok::<_, anyhow::Error>((i, client, events))
            });
        }
        let mut done = Vec::new();
        while let Some(r) = set.join_next().await {
            done.push(r??);
        }
        done.sort_by_key(|d| d.0);
        out.extend(done.into_iter().map(|(_, c, e)| (c, e)));
    }
    Ok(out)
}

/// Reads a client's events until it stops (each sender gets its own
/// messages back as events, and an unread queue would stall its reader).
fn drain(mut events: Events) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move { while events.recv().await.is_some() {} })
}

/// The metrics address the server logged.
async fn metrics_addr(server: &TestServer) -> anyhow::Result<SocketAddr> {
    within("metrics address logged", async {
        loop {
            let log = server.log_text();
            if let Some(a) = log.split("\"metrics\":\"").nth(1).and_then(|r| r.split('"').next()) {
                return a.parse::<SocketAddr>().context("metrics address");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
}

/// `qchat_commit_seconds_count` and `_sum` from `/metrics`.
async fn commit_stats(addr: SocketAddr) -> anyhow::Result<(u64, Duration)> {
    let text = within("GET /metrics", async {
        let mut tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n").await?;
        let mut body = String::new();
        tcp.read_to_string(&mut body).await?;
        Ok::<_, anyhow::Error>(body)
    })
    .await?;
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
            .with_context(|| format!("{name} missing from /metrics"))
    };
    let count = value("qchat_commit_seconds_count")?.trim().parse()?;
    let sum: f64 = value("qchat_commit_seconds_sum")?.trim().parse()?;
    Ok((count, Duration::from_secs_f64(sum)))
}
